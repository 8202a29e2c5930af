package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/verifier"
)

func (c *cli) verifyCommand() *cobra.Command {
	var issuerURL, audience string
	cmd := &cobra.Command{
		Use:   "verify --issuer URL TOKEN|-",
		Short: "Verify a token offline with the verifier package; exit 0 when valid, 1 when not",
		Args:  exactArgs(1, "the token (or - to read it from stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if issuerURL == "" {
				return usageError{"--issuer is required"}
			}
			// verify needs nothing from the file, but one named with
			// --config is checked like everywhere else.
			if c.configPath != "" {
				if _, err := c.loadConfig(cmd); err != nil {
					return err
				}
			}
			tok := args[0]
			if tok == "-" {
				b, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10))
				if err != nil {
					return fmt.Errorf("read token from stdin: %w", err)
				}
				tok = strings.TrimSpace(string(b))
			}
			v, err := verifier.New(cmd.Context(), verifier.Config{IssuerURL: issuerURL, Audience: audience})
			if err != nil {
				return err
			}
			defer v.Close()
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			claims, err := v.Verify(cmd.Context(), tok)
			if err != nil {
				_ = enc.Encode(map[string]any{"valid": false, "error": err.Error()})
				return &exitError{code: 1, err: err}
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
			return enc.Encode(out)
		},
	}
	cmd.Flags().StringVar(&issuerURL, "issuer", "", "issuer URL (required)")
	cmd.Flags().StringVar(&audience, "audience", "", "require this audience")
	return cmd
}
