package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// httpClient returns a client with timeout that, when caFile is set, also
// trusts the PEM certificates in it (an issuer with a private CA), on top
// of the system's roots.
func httpClient(caFile string, timeout time.Duration) (*http.Client, error) {
	c := &http.Client{Timeout: timeout}
	if caFile == "" {
		return c, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--ca-file: %v", err)}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, usageError{fmt.Sprintf("--ca-file %s: no PEM certificate in it", caFile)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.Transport = tr
	return c, nil
}

// caFileDefault is the --ca-file default: SIGNET_CA_FILE.
func caFileDefault() string { return os.Getenv("SIGNET_CA_FILE") }
