// Package interop tests signet tokens with the clients other services use
// instead of signet's verifier: go-oidc, jwx, golang-jwt with keyfunc, the
// Kubernetes API server's JWT authenticator, and (through node:test) the
// Node.js libraries jose and jsonwebtoken with jwks-rsa. It is a module of
// its own so that these dependencies stay out of signet's go.mod.
//
// The tests start the real signet binary (built from ../cmd/signet, or
// $SIGNET_BIN) on loopback over HTTPS with a throw-away CA, one issuer per
// signing algorithm, and check for every client that it accepts a signet
// token and refuses a token signed by a withdrawn key and every forgery
// signet's own verifier refuses. Run them with `go test ./...` in this
// directory; scripts/test.sh does so.
package interop
