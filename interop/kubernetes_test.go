package interop

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	k8soidc "k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
)

// recipeBlock finds the AuthenticationConfiguration in docs/INTEROP.md.
var recipeBlock = regexp.MustCompile("(?s)```yaml\n(apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n.*?)```")

// kubernetesRecipe returns the documented AuthenticationConfiguration
// with the test issuer's URL and CA put in, exactly as an operator would
// fill it in.
func kubernetesRecipe(t *testing.T, iss *issuer) []byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/INTEROP.md")
	if err != nil {
		t.Fatalf("read the recipe: %v", err)
	}
	m := recipeBlock.FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/INTEROP.md has no AuthenticationConfiguration block")
	}
	recipe := strings.ReplaceAll(string(m[1]), "https://auth.example.com", iss.url)
	// The placeholder certificate, BEGIN through END, becomes the CA.
	placeholder := regexp.MustCompile(`(?s)( *)-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n`)
	loc := placeholder.FindStringSubmatchIndex(recipe)
	if loc == nil {
		t.Fatal("the recipe has no certificateAuthority placeholder")
	}
	indent := recipe[loc[2]:loc[3]]
	var ca strings.Builder
	for _, line := range strings.SplitAfter(strings.TrimRight(string(iss.ca.PEM), "\n"), "\n") {
		ca.WriteString(indent + strings.TrimRight(line, "\n") + "\n")
	}
	return []byte(recipe[:loc[0]] + ca.String() + recipe[loc[1]:])
}

// staticCA is the certificateAuthority of the configuration as the
// authenticator's CA bundle, what kube-apiserver hands it for inline PEM
// (dynamiccertificates.NewStaticCAContent, whose package would pull all of
// client-go into this build).
type staticCA string

// CurrentCABundleContent implements k8soidc.CAContentProvider.
func (c staticCA) CurrentCABundleContent() []byte { return []byte(c) }

// kubernetesAuthenticator builds the API server's JWT authenticator from
// an AuthenticationConfiguration the way kube-apiserver does with
// --authentication-config: strict decoding into the internal type, the
// certificateAuthority as the CA bundle, every signing algorithm the
// API server allows (kube-apiserver passes them all for this file).
func kubernetesAuthenticator(ctx context.Context, t *testing.T, data []byte) k8soidc.AuthenticatorTokenWithHealthCheck {
	t.Helper()
	scheme := runtime.NewScheme()
	install.Install(scheme)
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	obj, err := runtime.Decode(codecs.UniversalDecoder(), data)
	if err != nil {
		t.Fatalf("decode the AuthenticationConfiguration: %v\n%s", err, data)
	}
	cfg, ok := obj.(*apiserverapi.AuthenticationConfiguration)
	if !ok || len(cfg.JWT) != 1 {
		t.Fatalf("decoded %T with %d jwt entries, want one AuthenticationConfiguration entry", obj, len(cfg.JWT))
	}
	jwtCfg := cfg.JWT[0]
	authn, err := k8soidc.New(ctx, k8soidc.Options{
		JWTAuthenticator:     jwtCfg,
		CAContentProvider:    staticCA(jwtCfg.Issuer.CertificateAuthority),
		SupportedSigningAlgs: k8soidc.AllValidSigningAlgorithms(),
	})
	if err != nil {
		t.Fatalf("oidc.New: %v", err)
	}
	// It discovers the issuer in the background.
	for deadline := time.Now().Add(30 * time.Second); authn.HealthCheck() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the authenticator did not initialise: %v", authn.HealthCheck())
		}
	}
	return authn
}

// TestKubernetes: the Kubernetes API server's JWT authenticator, set up
// from the recipe in docs/INTEROP.md, over HTTPS with the test CA. It
// accepts ES256 and RS256 tokens (user signet:alice, group
// signet-org:acme) and refuses EdDSA, which it does not support.
func TestKubernetes(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			iss := issuerFor(t, alg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			authn := kubernetesAuthenticator(ctx, t, kubernetesRecipe(t, iss))

			resp, ok, err := authn.AuthenticateToken(ctx, iss.fixture.Valid)
			if alg != "EdDSA" {
				if err != nil || !ok {
					t.Fatalf("valid %s token: ok %v, err %v", alg, ok, err)
				}
				if name, groups := resp.User.GetName(), resp.User.GetGroups(); name != "signet:alice" || !slices.Contains(groups, "signet-org:acme") {
					t.Errorf("user %q groups %v, want signet:alice in signet-org:acme", name, groups)
				}
			}
			checkClient(t, iss.fixture, func(ctx context.Context, token string) error {
				_, ok, err := authn.AuthenticateToken(ctx, token)
				if err != nil {
					return err
				}
				if !ok {
					// A token of another issuer is "not mine", no error.
					return errRefused
				}
				return nil
			}, expectations{refusesAlg: map[string]string{"EdDSA": "the API server accepts RS, ES and PS algorithms only"}})
		})
	}
}

// The recipe fails loudly rather than silently when something in it is
// wrong: a misspelt field is refused by the strict decoding, as
// kube-apiserver refuses it.
func TestKubernetesRecipeIsStrict(t *testing.T) {
	iss := issuerFor(t, "ES256")
	bad := strings.Replace(string(kubernetesRecipe(t, iss)), "claimMappings:", "claimMapping:", 1)
	scheme := runtime.NewScheme()
	install.Install(scheme)
	_, err := runtime.Decode(serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDecoder(), []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "claimMapping") {
		t.Fatalf("a misspelt field: got %v, want a strict decoding error", err)
	}
}
