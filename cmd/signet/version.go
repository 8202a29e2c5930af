package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion describes the running binary from the build information
// the Go toolchain embeds: the module version ("(devel)" for a plain
// build outside a module proxy; a pseudo-version such as
// v0.0.0-20261201093000-0123456789ab when built from a VCS checkout), the
// VCS commit and its time, whether the tree had uncommitted changes, and
// the Go version and platform. A binary built with -buildvcs=false (or
// from a tree the go command does not recognise as a checkout, such as a
// git worktree) has no commit, and says so.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	version, commit, when, modified := "(unknown)", "", "", false
	if ok && info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var parts []string
	if commit == "" {
		parts = append(parts, "commit unknown (built without VCS information)")
	} else {
		c := "commit " + commit
		if modified {
			c += " with uncommitted changes"
		}
		parts = append(parts, c)
		if when != "" {
			parts = append(parts, "committed "+when)
		}
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("signet %s (%s)", version, strings.Join(parts, ", "))
}

// versionString is buildVersion of the running binary.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	return buildVersion(info, ok)
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and VCS commit this binary was built from (same as --version)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(c.stdout, versionString())
			return err
		},
	}
}
