// Package ldaptest runs a real OpenLDAP server (slapd) for tests: a fresh
// directory in a temporary folder, on a free loopback port, with a
// service account, a people branch and an admin group, and helpers to add,
// change and remove users while it runs, or to stop it.
//
// Start skips the test when slapd is not installed, except in CI (the
// environment variable CI set to anything but "false" or "0"), where a
// missing slapd fails it: scripts/test.sh installs it (Debian's slapd and
// ldap-utils packages).
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The directory's layout.
const (
	// Suffix is the directory's root.
	Suffix = "dc=signet,dc=test"
	// People is where users live (the user base).
	People = "ou=people," + Suffix
	// AdminGroup is a groupOfNames whose members are admins.
	AdminGroup = "cn=signet-admins,ou=groups," + Suffix
	// ServiceDN and ServicePassword are the service account that may
	// search people and read groups. Anonymous clients may not.
	ServiceDN       = "cn=signet,ou=services," + Suffix
	ServicePassword = "service-account-secret"
	// placeholder keeps the admin group valid (groupOfNames needs a
	// member) when no real user is in it.
	placeholder = "cn=nobody," + Suffix
)

// Paths of Debian's OpenLDAP.
var (
	slapdPaths = []string{"/usr/sbin/slapd", "/usr/local/libexec/slapd", "/usr/libexec/slapd"}
	schemaDirs = []string{"/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema"}
	moduleDirs = []string{"/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/local/libexec/openldap"}
)

// Server is a running slapd. Its methods may be called from one test
// goroutine at a time.
type Server struct {
	// URL is ldap://127.0.0.1:PORT.
	URL string

	tb      testing.TB
	slapd   string
	dir     string
	conf    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

// ciRequired reports whether a missing component must fail the test.
func ciRequired() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Slapd returns the slapd binary, or "" when none is installed.
func Slapd() string {
	for _, p := range slapdPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	return ""
}

// Version returns slapd's version line ("@(#) $OpenLDAP: slapd 2.5.13...").
func Version() string {
	bin := Slapd()
	if bin == "" {
		return ""
	}
	out, _ := exec.Command(bin, "-VV").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

func firstDir(dirs []string, file string) string {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	return ""
}

// Start runs a fresh slapd for tb, stopped at tb's cleanup, with the
// service account, ou=people, ou=groups and an empty admin group.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Slapd()
	schema := firstDir(schemaDirs, "core.schema")
	if bin == "" || schema == "" {
		msg := "slapd is not installed (Debian: apt-get install slapd ldap-utils; scripts/test.sh does it)"
		if ciRequired() {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	dir := tb.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		tb.Fatalf("ldaptest: %v", err)
	}
	var modules string
	if md := firstDir(moduleDirs, "back_mdb.so"); md != "" {
		modules = "modulepath " + md + "\nmoduleload back_mdb\n"
	}
	conf := fmt.Sprintf(`include %[1]s/core.schema
include %[1]s/cosine.schema
include %[1]s/inetorgperson.schema
include %[1]s/nis.schema
pidfile %[2]s/slapd.pid
%[3]s
# Unauthenticated binds (a DN with an empty password) succeed here, as on
# many real directories: the client must never send one as a sign-in.
allow bind_anon_dn
database mdb
maxsize 67108864
suffix "%[4]s"
rootdn "cn=root,%[4]s"
rootpw root-secret
directory %[2]s/db
access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
access to *
  by dn.exact="%[5]s" read
  by self read
  by * none
`, schema, dir, modules, Suffix, ServiceDN)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		tb.Fatalf("ldaptest: %v", err)
	}
	logFile, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		tb.Fatalf("ldaptest: %v", err)
	}
	s := &Server{tb: tb, slapd: bin, dir: dir, conf: confPath, logFile: logFile}
	tb.Cleanup(func() {
		s.Stop()
		logFile.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil && len(b) > 0 {
				tb.Logf("slapd log:\n%s", lastLines(b, 40))
			}
		}
	})
	// A free port can be taken between asking and binding; try a few.
	for attempt := 0; ; attempt++ {
		port := freePort(tb)
		s.URL = "ldap://127.0.0.1:" + strconv.Itoa(port)
		if err := s.start(); err == nil {
			break
		} else if attempt == 4 {
			tb.Fatalf("ldaptest: start slapd: %v", err)
		}
	}
	s.seed()
	return s
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("ldaptest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs slapd in the foreground (-d 0) on s.URL and waits, at most
// ten seconds, until it answers.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.slapd, "-d", "0", "-f", s.conf, "-h", s.URL+"/")
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.slapd, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // the exit is observed through exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("slapd exited at start (see its log in %s)", s.logFile.Name())
		default:
		}
		if c, err := ldap.DialURL(s.URL); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("slapd did not answer on %s within 10s", s.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop ends slapd (the directory is then unreachable); Restart brings it
// back with the same data on the same port.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart starts a stopped slapd again on the same URL.
func (s *Server) Restart() {
	s.tb.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may still be held briefly
	}
	s.tb.Fatalf("ldaptest: restart slapd: %v", err)
}

// root binds as the directory's root, for changing the data.
func (s *Server) root() *ldap.Conn {
	s.tb.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		s.tb.Fatalf("ldaptest: dial %s: %v", s.URL, err)
	}
	if err := c.Bind("cn=root,"+Suffix, "root-secret"); err != nil {
		c.Close()
		s.tb.Fatalf("ldaptest: bind as root: %v", err)
	}
	return c
}

func (s *Server) add(c *ldap.Conn, dn string, attrs map[string][]string) {
	s.tb.Helper()
	req := ldap.NewAddRequest(dn, nil)
	for name, vals := range attrs {
		req.Attribute(name, vals)
	}
	if err := c.Add(req); err != nil {
		s.tb.Fatalf("ldaptest: add %s: %v", dn, err)
	}
}

func (s *Server) seed() {
	c := s.root()
	defer c.Close()
	s.add(c, Suffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"signet"}, "o": {"signet test"}})
	for _, ou := range []string{"people", "groups", "services"} {
		s.add(c, "ou="+ou+","+Suffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {ou}})
	}
	s.add(c, ServiceDN, map[string][]string{"objectClass": {"organizationalRole", "simpleSecurityObject"},
		"cn": {"signet"}, "userPassword": {ServicePassword}})
	s.add(c, placeholder, map[string][]string{"objectClass": {"organizationalRole"}, "cn": {"nobody"}})
	s.add(c, AdminGroup, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"signet-admins"}, "member": {placeholder}})
}

// UserDN is the DN of uid under People.
func UserDN(uid string) string { return "uid=" + ldap.EscapeDN(uid) + "," + People }

// AddUser adds an inetOrgPerson uid with password and (when not empty)
// mail, and returns its DN.
func (s *Server) AddUser(uid, password, mail string) string {
	s.tb.Helper()
	c := s.root()
	defer c.Close()
	attrs := map[string][]string{
		"objectClass": {"inetOrgPerson"}, "uid": {uid}, "cn": {uid}, "sn": {uid},
		"userPassword": {password},
	}
	if mail != "" {
		attrs["mail"] = []string{mail}
	}
	dn := UserDN(uid)
	s.add(c, dn, attrs)
	return dn
}

// DeleteUser removes uid's entry.
func (s *Server) DeleteUser(uid string) {
	s.tb.Helper()
	c := s.root()
	defer c.Close()
	if err := c.Del(ldap.NewDelRequest(UserDN(uid), nil)); err != nil {
		s.tb.Fatalf("ldaptest: delete %s: %v", uid, err)
	}
}

// Replace sets attribute attr of uid's entry to vals (none: removes it).
func (s *Server) Replace(uid, attr string, vals ...string) {
	s.tb.Helper()
	c := s.root()
	defer c.Close()
	req := ldap.NewModifyRequest(UserDN(uid), nil)
	req.Replace(attr, vals)
	if err := c.Modify(req); err != nil {
		s.tb.Fatalf("ldaptest: modify %s %s: %v", uid, attr, err)
	}
}

// AddAdmin makes uid a member of AdminGroup; RemoveAdmin takes them out.
func (s *Server) AddAdmin(uid string) { s.modifyGroup(uid, true) }

// RemoveAdmin takes uid out of AdminGroup.
func (s *Server) RemoveAdmin(uid string) { s.modifyGroup(uid, false) }

func (s *Server) modifyGroup(uid string, add bool) {
	s.tb.Helper()
	c := s.root()
	defer c.Close()
	req := ldap.NewModifyRequest(AdminGroup, nil)
	if add {
		req.Add("member", []string{UserDN(uid)})
	} else {
		req.Delete("member", []string{UserDN(uid)})
	}
	if err := c.Modify(req); err != nil {
		s.tb.Fatalf("ldaptest: change %s's membership of the admin group: %v", uid, err)
	}
}

// Log returns what slapd has written so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logFile.Name())
	return string(bytes.TrimSpace(b))
}
