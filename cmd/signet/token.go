package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// tokenClient speaks to a running issuer with Basic auth.
type tokenClient struct {
	base     string
	user     string
	password string
	http     *http.Client
}

func (c *cli) tokenCommand() *cobra.Command {
	var urlFlag, user, caFile string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage tokens through a running issuer (password on stdin or SIGNET_PASSWORD)",
	}
	cmd.PersistentFlags().StringVar(&urlFlag, "url", "", "issuer URL (default: SIGNET_URL, else server.public_url)")
	cmd.PersistentFlags().StringVar(&user, "user", "", "username (default: SIGNET_USER)")
	cmd.PersistentFlags().StringVar(&caFile, "ca-file", caFileDefault(), "PEM file of CA certificates to trust for an https issuer, besides the system's (default: SIGNET_CA_FILE)")
	client := func(cmd *cobra.Command) (*tokenClient, error) {
		base, err := c.issuerURL(cmd, urlFlag, "--url")
		if err != nil {
			return nil, err
		}
		name := user
		if name == "" {
			name = os.Getenv("SIGNET_USER")
		}
		if name == "" {
			return nil, usageError{"--user is required (or SIGNET_USER)"}
		}
		pw := os.Getenv("SIGNET_PASSWORD")
		if pw == "" {
			if fd, ok := terminal(c.stdin); ok {
				pw, err = promptPassword(fd, c.stderr, "Password for "+name+" at "+base+": ")
			} else {
				pw, err = readPassword(c.stdin)
			}
			if err != nil {
				return nil, fmt.Errorf("%w (type it when asked, pipe it on stdin or set SIGNET_PASSWORD)", err)
			}
		}
		hc, err := httpClient(caFile, 30*time.Second)
		if err != nil {
			return nil, err
		}
		return &tokenClient{base: base, user: name, password: pw, http: hc}, nil
	}

	var name, description, typ, scopes, preset, expiresIn, expiresAt string
	create := &cobra.Command{
		Use:   "create --name NAME [--type personal|administrative] [--scopes a,b | --preset P] [--expires-in 720h | --expires-at RFC3339]",
		Short: "Create a named token; its value is printed this once",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"name": name}
			setIf(body, "description", description)
			setIf(body, "type", typ)
			setIf(body, "preset", preset)
			setIf(body, "expires_in", expiresIn)
			setIf(body, "expires_at", expiresAt)
			if cmd.Flags().Changed("scopes") {
				body["scopes"] = splitScopes(scopes)
			}
			return tc.do(cmd.Context(), http.MethodPost, "/tokens", body, c.stdout)
		},
	}
	create.Flags().StringVar(&name, "name", "", "token name (required)")
	create.Flags().StringVar(&description, "description", "", "what the token is for")
	create.Flags().StringVar(&typ, "type", "", "personal (default) or administrative (org admins)")
	create.Flags().StringVar(&scopes, "scopes", "", "comma- or space-separated scopes (empty: a token that grants nothing)")
	create.Flags().StringVar(&preset, "preset", "", "a preset from the issuer's config instead of --scopes")
	create.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime, e.g. 720h (default from the issuer's config)")
	create.Flags().StringVar(&expiresAt, "expires-at", "", "expiry as RFC 3339")
	_ = create.MarkFlagRequired("name")

	var owner, listType string
	var includeRevoked, asJSON bool
	list := &cobra.Command{
		Use:   "list [--owner NAME] [--type T] [--include-revoked] [--json]",
		Short: "List tokens (never their values): a table on a terminal, JSON with --json or when piped",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if owner != "" {
				q.Set("owner", owner)
			}
			if listType != "" {
				q.Set("type", listType)
			}
			if includeRevoked {
				q.Set("include_revoked", "true")
			}
			path := "/tokens"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			if asJSON || !c.isTerminal(c.stdout) {
				return tc.do(cmd.Context(), http.MethodGet, path, nil, c.stdout)
			}
			var buf bytes.Buffer
			if err := tc.do(cmd.Context(), http.MethodGet, path, nil, &buf); err != nil {
				return err
			}
			var answer struct {
				Tokens []listedToken `json:"tokens"`
			}
			if err := json.Unmarshal(buf.Bytes(), &answer); err != nil {
				return fmt.Errorf("read the token list: %w", err)
			}
			return printTokenTable(c.stdout, answer.Tokens, time.Now())
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the issuer's JSON even on a terminal")
	list.Flags().StringVar(&owner, "owner", "", "only tokens of this user")
	list.Flags().StringVar(&listType, "type", "", "personal or administrative")
	list.Flags().BoolVar(&includeRevoked, "include-revoked", false, "include revoked tokens")

	info := &cobra.Command{
		Use:   "info TOKEN_ID|TOKEN",
		Short: "Show a token's metadata, by id or by value",
		Args:  exactArgs(1, "a token id or value"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			if strings.Count(args[0], ".") == 2 {
				return tc.do(cmd.Context(), http.MethodGet, "/user-token?token="+url.QueryEscape(args[0]), nil, c.stdout)
			}
			return tc.do(cmd.Context(), http.MethodGet, "/tokens/"+url.PathEscape(args[0]), nil, c.stdout)
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token",
		Args:  exactArgs(1, "the token id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			if err := tc.do(cmd.Context(), http.MethodDelete, "/tokens/"+url.PathEscape(args[0]), nil, io.Discard); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "revoked %s\n", args[0])
			return nil
		},
	}
	var grace string
	regenerate := &cobra.Command{
		Use:   "regenerate TOKEN_ID [--grace D]",
		Short: "Replace a token with a new value and id (the old one is revoked, at once or after --grace); the value is printed this once",
		Args:  exactArgs(1, "the token id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			var body any
			if grace != "" {
				body = map[string]any{"grace": grace}
			}
			return tc.do(cmd.Context(), http.MethodPost, "/tokens/"+url.PathEscape(args[0])+"/regenerate", body, c.stdout)
		},
	}
	regenerate.Flags().StringVar(&grace, "grace", "", "keep the old value working this long (e.g. 1h; at most tokens.max_regenerate_grace); the answer's previous_valid_until says until when")
	var copyName, copyExpiresIn string
	cp := &cobra.Command{
		Use:   "copy TOKEN_ID [--name NAME] [--expires-in D]",
		Short: "Create a new token with the parameters of an existing one (which stays valid)",
		Args:  exactArgs(1, "the token id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tc, err := client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{}
			setIf(body, "name", copyName)
			setIf(body, "expires_in", copyExpiresIn)
			return tc.do(cmd.Context(), http.MethodPost, "/tokens/"+url.PathEscape(args[0])+"/copy", body, c.stdout)
		},
	}
	cp.Flags().StringVar(&copyName, "name", "", "name of the copy")
	cp.Flags().StringVar(&copyExpiresIn, "expires-in", "", "lifetime of the copy")

	cmd.AddCommand(create, list, info, revoke, regenerate, cp)
	return cmd
}

// listedToken is what the table shows of one token of GET /tokens.
type listedToken struct {
	TokenID   string   `json:"token_id"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	User      string   `json:"user"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at"`
	Revoked   bool     `json:"revoked"`
	Expired   bool     `json:"expired"`
	// ValidUntil is the end of a regenerated token's grace period.
	ValidUntil string `json:"valid_until"`
}

// printTokenTable writes tokens as an aligned table for a person: id,
// name, type, owner, scopes, expiry and status.
func printTokenTable(w io.Writer, tokens []listedToken, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tOWNER\tSCOPES\tEXPIRES\tSTATUS")
	for _, t := range tokens {
		name := t.Name
		if name == "" {
			name = "(unnamed)"
		}
		owner := t.User
		if t.Type == "administrative" || owner == "" {
			owner = "(organization)"
		}
		scopes := strings.Join(t.Scopes, " ")
		if scopes == "" {
			scopes = "(none)"
		}
		expires := t.ExpiresAt
		exp, err := time.Parse(time.RFC3339, t.ExpiresAt)
		if err == nil {
			expires = exp.UTC().Format("2006-01-02 15:04 UTC")
		}
		status := "active"
		switch {
		case t.Revoked:
			status = "revoked"
		case t.Expired || (err == nil && !exp.After(now)):
			status = "expired"
		case t.ValidUntil != "":
			// The old value of a token regenerated with a grace period.
			if until, err := time.Parse(time.RFC3339, t.ValidUntil); err == nil {
				status = "active until " + until.UTC().Format("2006-01-02 15:04:05 UTC")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.TokenID, oneLine(name), t.Type, owner, oneLine(scopes), expires, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(tokens) == 0 {
		_, err := fmt.Fprintln(w, "(no tokens)")
		return err
	}
	return nil
}

// oneLine keeps a value from breaking the table: control characters
// (a name may hold a tab or newline) become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func setIf(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

// splitScopes splits a comma- or space-separated list; an empty list is an
// empty (not nil) slice, which the issuer reads as "no scopes".
func splitScopes(s string) []string {
	return append([]string{}, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
}

// do sends one request and writes the (indented) JSON answer to out. An
// error answer becomes an error carrying the issuer's message.
func (tc *tokenClient) do(ctx context.Context, method, path string, body any, out io.Writer) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, tc.base+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(tc.user, tc.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := tc.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, tc.base+strings.SplitN(path, "?", 2)[0], errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Message string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (%d %s)", e.Message, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("issuer answered %s", resp.Status)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		_, err = out.Write(data)
		return err
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(out)
	return err
}
