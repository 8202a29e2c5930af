package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signet-auth/signet/config"
	"github.com/signet-auth/signet/issuer"
	"github.com/signet-auth/signet/store"
)

func (c *cli) userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users straight in the store (works while the issuer is stopped)",
	}
	cmd.AddCommand(c.userAddCommand(), c.userListCommand(), c.userRemoveCommand(), c.userPasswdCommand())
	return cmd
}

func (c *cli) userAddCommand() *cobra.Command {
	var org, role, email string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME --org ORG --role admin|member --email EMAIL --password-stdin",
		Short: "Add a user",
		Args:  exactArgs(1, "the username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, tty := terminal(c.stdin); !fromStdin && !tty {
				return usageError{"--password-stdin is required: pipe the password on standard input (on a terminal signet asks for it)"}
			}
			now := time.Now().UTC()
			u := store.User{Username: args[0], Org: org, Role: store.Role(role), Email: email, CreatedAt: now, UpdatedAt: now}
			if err := issuer.ValidateUser(u); err != nil {
				return err
			}
			return c.withService(cmd, func(svc *issuer.Service) error {
				password, err := c.readNewPassword("new user " + u.Username)
				if err != nil {
					return err
				}
				u, err := svc.CreateUser(cmd.Context(), issuer.CLI(), issuer.NewUser{
					Username: u.Username, Password: password, Email: u.Email, Role: u.Role, Org: u.Org,
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "added user %s (%s of %s)\n", u.Username, u.Role, u.Org)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization (required)")
	cmd.Flags().StringVar(&role, "role", "member", "admin or member")
	cmd.Flags().StringVar(&email, "email", "", "email address (required)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (a terminal is asked, without echo)")
	_ = cmd.MarkFlagRequired("org")
	_ = cmd.MarkFlagRequired("email")
	addStoreFlags(cmd)
	return cmd
}

func (c *cli) userListCommand() *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:   "list [--org ORG]",
		Short: "List users",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(_ config.Config, st store.Store) error {
				users, err := st.ListUsers(cmd.Context(), org)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "USERNAME\tORG\tROLE\tEMAIL\tCREATED")
				for _, u := range users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Org, u.Role, u.Email, u.CreatedAt.UTC().Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "only this organization")
	addStoreFlags(cmd)
	return cmd
}

func (c *cli) userRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user and revoke all of their personal tokens",
		Args:  exactArgs(1, "the username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd, func(svc *issuer.Service) error {
				u, err := svc.RemoveUser(cmd.Context(), issuer.CLI(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "removed user %s; their personal tokens are revoked\n", u.Username)
				return nil
			})
		},
	}
	addStoreFlags(cmd)
	return cmd
}

func (c *cli) userPasswdCommand() *cobra.Command {
	var fromStdin, revoke bool
	cmd := &cobra.Command{
		Use:   "passwd NAME --password-stdin [--revoke-tokens]",
		Short: "Set a user's password",
		Args:  exactArgs(1, "the username"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, tty := terminal(c.stdin); !fromStdin && !tty {
				return usageError{"--password-stdin is required: pipe the password on standard input (on a terminal signet asks for it)"}
			}
			return c.withService(cmd, func(svc *issuer.Service) error {
				password, err := c.readNewPassword(args[0])
				if err != nil {
					return err
				}
				u, err := svc.SetPassword(cmd.Context(), issuer.CLI(), args[0], password, revoke)
				if err != nil {
					return err
				}
				detail := "password changed"
				if revoke {
					detail += "; personal tokens revoked"
				}
				fmt.Fprintf(c.stdout, "%s: %s\n", u.Username, detail)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the new password from standard input (a terminal is asked, without echo)")
	cmd.Flags().BoolVar(&revoke, "revoke-tokens", false, "also revoke every personal token the user holds")
	addStoreFlags(cmd)
	return cmd
}

// withStore loads the configuration and opens the store for one offline
// command, closing the store afterwards.
func (c *cli) withStore(cmd *cobra.Command, fn func(cfg config.Config, st store.Store) error) error {
	cfg, err := c.loadConfig(cmd)
	if err != nil {
		return err
	}
	st, err := c.openStore(cmd, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(cfg, st)
}

// openStore opens the configured store for an offline command, first
// saying on stderr which one, so that a command run from the wrong folder
// (a new SQLite file) or with the wrong environment is noticed.
func (c *cli) openStore(cmd *cobra.Command, cfg config.Store) (store.Store, error) {
	fmt.Fprintf(c.stderr, "signet: store %s\n", describeStore(cfg))
	return openStore(cmd.Context(), cfg)
}

// describeStore names a store for a person: the driver and the SQLite
// file's absolute path, or PostgreSQL's host, port and database. It never
// shows a password or other DSN parameters.
func describeStore(cfg config.Store) string {
	if cfg.Driver != "postgres" {
		path := cfg.DSN
		if file, _, ok := strings.Cut(strings.TrimPrefix(path, "file:"), "?"); ok || strings.HasPrefix(path, "file:") {
			path = file
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return fmt.Sprintf("%s %s", cfg.Driver, path)
	}
	host, port, db := "", "", ""
	if u, err := url.Parse(cfg.DSN); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		host, port, db = u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/")
	} else {
		for _, field := range strings.Fields(cfg.DSN) {
			k, v, _ := strings.Cut(field, "=")
			v = strings.Trim(v, "'")
			switch k {
			case "host":
				host = v
			case "port":
				port = v
			case "dbname":
				db = v
			}
		}
	}
	if host == "" {
		host = "localhost"
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	if db != "" {
		host += "/" + db
	}
	return "postgres " + host
}

// readNewPassword reads a new password: one line from a pipe, or on a
// terminal asked twice for who, without echo.
func (c *cli) readNewPassword(who string) (string, error) {
	if fd, ok := terminal(c.stdin); ok {
		return promptNewPassword(fd, c.stderr, who)
	}
	return readPassword(c.stdin)
}

// withService opens the store for one offline command and hands the
// issuer's rules over it to fn, acting as issuer.CLI(): the CLI changes
// users and keys through the same Service as the HTTP API, so cut-offs,
// lifetimes, the password policy and the audit trail are the same.
func (c *cli) withService(cmd *cobra.Command, fn func(svc *issuer.Service) error) error {
	return c.withStore(cmd, func(cfg config.Config, st store.Store) error {
		svc, err := issuer.NewService(issuerConfig(cfg, newOfflineLogger(cfg.Log, c.stderr)), st)
		if err != nil {
			return err
		}
		return fn(svc)
	})
}

// terminal reports whether r is a terminal, and its descriptor.
func terminal(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// promptNewPassword asks on w for a new password for who, twice, reading
// the terminal fd without echo.
func promptNewPassword(fd int, w io.Writer, who string) (string, error) {
	first, err := promptPassword(fd, w, "New password for "+who+": ")
	if err != nil {
		return "", err
	}
	again, err := promptPassword(fd, w, "Repeat the password: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	return first, nil
}

// promptPassword writes prompt to w and reads one line from the terminal
// fd without echo.
func promptPassword(fd int, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("no password given")
	}
	return string(b), nil
}

// readPassword reads one line from r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}
