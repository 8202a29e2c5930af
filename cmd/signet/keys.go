package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/config"
	"github.com/signet-auth/signet/issuer"
	"github.com/signet-auth/signet/keys"
)

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage signing keys (a running issuer follows changes without a restart)",
	}
	cmd.AddCommand(c.keysListCommand(), c.keysRotateCommand(), c.keysRevokeCommand())
	return cmd
}

func (c *cli) keysListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List keys with their state (next, signing, retired, expired, revoked) and dates",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeyring(cmd, func(_ config.Config, kr *keys.Keyring) error {
				c.printKeys(kr.List())
				return nil
			})
		},
	}
	addStoreFlags(cmd)
	return cmd
}

func (c *cli) printKeys(list []keys.KeyInfo) {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED\tREVOKED\tPUBLISHED UNTIL")
	for _, k := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
			fmtTime(k.CreatedAt), fmtTime(k.SignFrom), fmtTimePtr(k.RetiredAt), fmtTimePtr(k.RevokedAt), fmtTimePtr(k.PublishedUntil))
	}
	_ = w.Flush()
}

func (c *cli) keysRotateCommand() *cobra.Command {
	var now bool
	cmd := &cobra.Command{
		Use:   "rotate [--now]",
		Short: "Add a new key: published at once, signing after keys.publish_delay (or at once with --now, withdrawing every key still waiting to sign)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeyring(cmd, func(_ config.Config, kr *keys.Keyring) error {
				before := kr.List()
				k, err := kr.Rotate(now)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "new key %s (%s), signing from %s\n", k.ID, k.Algorithm, fmtTime(k.SignFrom))
				for _, b := range before {
					if a, ok := findKey(kr.List(), b.ID); ok && b.State == keys.StateNext && a.State == keys.StateRevoked {
						fmt.Fprintf(c.stdout, "withdrew key %s, which was waiting to sign from %s\n", b.ID, fmtTime(b.SignFrom))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "sign with the new key at once (after a compromise)")
	addStoreFlags(cmd)
	return cmd
}

func (c *cli) keysRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke [--] KID",
		Short: "Withdraw a leaked key: gone from the JWKS at once, and every token it signed is revoked",
		Long: "Withdraw a leaked key: gone from the JWKS at once, and every token it signed is revoked.\n" +
			"A kid may start with '-': write `signet keys revoke -- -AbC...` so it is not taken for a flag.",
		Args: exactArgs(1, "the key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withKeyring(cmd, func(cfg config.Config, kr *keys.Keyring) error {
				info, ok := findKey(kr.List(), args[0])
				if !ok {
					return fmt.Errorf("no key %q in %s", args[0], cfg.Keys.Dir)
				}
				return c.withService(cmd, func(svc *issuer.Service) error {
					// The store entry first: once it is durable every
					// verifier refuses the key's tokens, even if the file
					// change fails. Tokens the key signed live at most its
					// recorded MaxTTL (which survives a later, lower
					// tokens.max_ttl).
					if err := svc.WithdrawKey(cmd.Context(), issuer.CLI(), info.ID, info.MaxTTL); err != nil {
						return err
					}
					k, err := kr.Revoke(info.ID)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "revoked key %s; tokens it signed no longer verify\n", k.ID)
					return nil
				})
			})
		},
	}
	addStoreFlags(cmd)
	return cmd
}

// withKeyring loads the configuration and opens the keys for one offline
// command.
func (c *cli) withKeyring(cmd *cobra.Command, fn func(cfg config.Config, kr *keys.Keyring) error) error {
	cfg, err := c.loadConfig(cmd)
	if err != nil {
		return err
	}
	dir := cfg.Keys.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	fmt.Fprintf(c.stderr, "signet: keys dir %s\n", dir)
	kr, err := openKeyring(cfg, newOfflineLogger(cfg.Log, c.stderr))
	if err != nil {
		return err
	}
	return fn(cfg, kr)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func findKey(list []keys.KeyInfo, kid string) (keys.KeyInfo, bool) {
	for _, k := range list {
		if k.ID == kid {
			return k, true
		}
	}
	return keys.KeyInfo{}, false
}
