package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/config"
	"github.com/signet-auth/signet/issuer"
)

// cli holds what every subcommand shares: the streams and the --config flag.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	root           *cobra.Command
	// isTerminal reports whether w is a terminal a person reads, which
	// decides between a table and JSON; tests replace it.
	isTerminal func(w io.Writer) bool
}

// writerIsTerminal is the real isTerminal: w is an *os.File on a
// terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// usageError marks mistakes in the command line itself (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func isUsageError(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	// cobra's own argument and flag errors.
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires at least") ||
		strings.HasPrefix(msg, "required flag") || strings.HasPrefix(msg, "invalid argument")
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, isTerminal: writerIsTerminal}
	root := &cobra.Command{
		Use:           "signet",
		Short:         "Issue signed access tokens and verify them offline",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "config file (default ./config.yaml when present)")
	c.root = root
	root.AddCommand(c.serveCommand(), c.userCommand(), c.keysCommand(), c.tokenCommand(), c.verifyCommand(), c.versionCommand(), c.gateCommand())
	return root
}

// flagBindings maps config keys to the flags that override them.
var flagBindings = map[string]string{
	"server.listen":     "listen",
	"server.public_url": "public-url",
	"store.driver":      "store-driver",
	"store.dsn":         "store-dsn",
	"keys.dir":          "keys-dir",
	"log.level":         "log-level",
}

// loadConfig reads the configuration for cmd: file, SIGNET_* environment,
// then the command's flags. Everything the issuer would refuse is refused
// here, before any command opens a store or creates a key.
func (c *cli) loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(c.configPath, cmd.Flags(), flagBindings, checkScopes, checkIssuer)
	if err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

// checkScopes applies the issuer's scope rule to every role pattern and
// preset scope, so a bad one is reported with its key and line.
func checkScopes(cfg config.Config) error {
	var errs []error
	for _, role := range slices.Sorted(maps.Keys(cfg.Roles)) {
		for i, s := range cfg.Roles[role].Scopes {
			if err := issuer.CheckScope(s); err != nil {
				errs = append(errs, &config.Error{Key: fmt.Sprintf("roles.%s.scopes[%d]", role, i), Problem: scopeProblem(err)})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Presets)) {
		for i, s := range cfg.Presets[name] {
			if err := issuer.CheckScope(s); err != nil {
				errs = append(errs, &config.Error{Key: fmt.Sprintf("presets.%s[%d]", name, i), Problem: scopeProblem(err)})
			}
		}
	}
	return errors.Join(errs...)
}

// scopeProblem is the sentence of an issuer scope error.
func scopeProblem(err error) string {
	var ie *issuer.Error
	if errors.As(err, &ie) {
		return ie.Message
	}
	return err.Error()
}

// checkIssuer refuses what issuer.New would refuse.
func checkIssuer(cfg config.Config) error {
	return issuerConfig(cfg, nil).Validate()
}

// addStoreFlags adds the flags that every offline command shares.
func addStoreFlags(cmd *cobra.Command) {
	cmd.Flags().String("store-driver", "", "store driver: sqlite or postgres (overrides store.driver)")
	cmd.Flags().String("store-dsn", "", "store DSN: a file for sqlite, a URL for postgres (overrides store.dsn)")
	cmd.Flags().String("keys-dir", "", "directory of signing keys (overrides keys.dir)")
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	return newLoggerAtLeast(cfg, w, slog.LevelDebug)
}

// newOfflineLogger is the logger of the offline commands (user, keys):
// they report what they did on stdout themselves, so the library's INFO
// lines would only repeat it; warnings and errors still show.
func newOfflineLogger(cfg config.Log, w io.Writer) *slog.Logger {
	return newLoggerAtLeast(cfg, w, slog.LevelWarn)
}

// newLoggerAtLeast logs at log.level, but never below floor.
func newLoggerAtLeast(cfg config.Log, w io.Writer, floor slog.Level) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: max(level, floor)}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("want %s, got %d argument(s)", what, len(args))}
		}
		return nil
	}
}
