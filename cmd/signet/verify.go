package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/verifier"
)

func (c *cli) verifyCommand() *cobra.Command {
	var issuerURL, audience, caFile string
	cmd := &cobra.Command{
		Use:   "verify [--issuer URL] TOKEN|-",
		Short: "Verify a token offline with the verifier package; exit 0 when valid (claims as JSON on stdout), 1 when not (the reason on stderr)",
		Long: "Verify a token offline with the verifier package, as a service would.\n" +
			"The issuer is --issuer, else SIGNET_URL, else server.public_url of the configuration.\n" +
			"Valid: the claims as JSON on standard output, exit 0. Not valid: the reason on standard error, exit 1.",
		Args: exactArgs(1, "the token (or - to read it from stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			base, err := c.issuerURL(cmd, issuerURL, "--issuer")
			if err != nil {
				return err
			}
			tok := args[0]
			if tok == "-" {
				b, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10))
				if err != nil {
					return fmt.Errorf("read token from stdin: %w", err)
				}
				tok = strings.TrimSpace(string(b))
			}
			hc, err := httpClient(caFile, 10*time.Second)
			if err != nil {
				return err
			}
			v, err := verifier.New(cmd.Context(), verifier.Config{IssuerURL: base, Audience: audience, HTTPClient: hc})
			if err != nil {
				return err
			}
			defer v.Close()
			claims, err := v.Verify(cmd.Context(), tok)
			if err != nil {
				// The reason once, on stderr (run prints it); stdout
				// carries claims only, so `signet verify T | jq` never
				// mistakes a refusal for claims.
				return &exitError{code: 1, err: fmt.Errorf("token not valid: %w", err)}
			}
			// The claims as the token carries them (RFC 7519 NumericDate
			// times), plus the verdict and the signing key.
			out := map[string]any{
				"valid":      true,
				"iss":        claims.Issuer,
				"sub":        claims.Subject,
				"iat":        claims.IssuedAt.Unix(),
				"exp":        claims.Expiry.Unix(),
				"jti":        claims.ID,
				"org":        claims.Org,
				"token_type": claims.TokenType,
				"scope":      strings.Join(claims.Scopes, " "),
				"kid":        claims.KeyID,
			}
			if len(claims.Audience) > 0 {
				out["aud"] = claims.Audience
			}
			if !claims.NotBefore.IsZero() {
				out["nbf"] = claims.NotBefore.Unix()
			}
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	cmd.Flags().StringVar(&issuerURL, "issuer", "", "issuer URL (default: SIGNET_URL, else server.public_url)")
	cmd.Flags().StringVar(&audience, "audience", "", "require this audience")
	cmd.Flags().StringVar(&caFile, "ca-file", caFileDefault(), "PEM file of CA certificates to trust for an https issuer, besides the system's (default: SIGNET_CA_FILE)")
	return cmd
}

// issuerURL is the issuer a client command talks to: the flag's value,
// else SIGNET_URL, else server.public_url of the configuration (file and
// SIGNET_SERVER_PUBLIC_URL), checked to be an http(s) URL.
func (c *cli) issuerURL(cmd *cobra.Command, flagValue, flagName string) (string, error) {
	base, from := flagValue, flagName
	if base == "" {
		base, from = os.Getenv("SIGNET_URL"), "SIGNET_URL"
	}
	// The file is read when it gives the URL, and whenever --config names
	// one: a file with mistakes is refused by every command that reads it.
	if base == "" || c.configPath != "" {
		cfg, err := c.loadConfig(cmd)
		if err != nil {
			return "", err
		}
		if base == "" {
			base, from = cfg.Server.PublicURL, "server.public_url"
		}
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{fmt.Sprintf("%s %q is not an http(s) URL", from, base)}
	}
	return strings.TrimRight(base, "/"), nil
}
