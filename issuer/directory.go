package issuer

import (
	"context"
	"errors"
	"time"

	"github.com/signet-auth/signet/directory"
	"github.com/signet-auth/signet/store"
)

// checkDirectoryPassword is checkPassword for a username that is not a
// local user: a directory user (known), or someone the directory may know
// (known is nil). It
// settles attempt, reserved by the caller: a refused password is one
// failure, answered like a wrong local password; a directory that cannot
// be asked answers 503 and counts nothing, since no password was checked.
func (s *Server) checkDirectoryPassword(ctx context.Context, attempt *loginAttempt, username, password, client string, known *store.User) (*principal, error) {
	settled := false
	defer func() {
		if !settled {
			attempt.cancel()
		}
	}()
	refuse := func(detail string) error {
		settled = true
		s.metrics.directoryLogins.WithLabelValues("refused").Inc()
		return s.loginFailed(ctx, attempt, username, client, known, detail)
	}
	dir := s.cfg.Directory
	switch {
	case dir == nil:
		// A directory user, but auth.ldap is no longer configured.
		return nil, refuse("directory sign-in is not configured")
	case !validName(username) || password == "":
		// Never a directory question: no user could have this name, and
		// an empty password must never reach a bind.
		return nil, refuse("unknown user")
	}
	e, err := dir.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, directory.ErrUnavailable):
		s.metrics.directoryLogins.WithLabelValues("unavailable").Inc()
		s.log.Warn("directory sign-in impossible: the directory is unavailable", "user", username, "err", err)
		return nil, errorf(ECodeUnavailable, "The user directory cannot be reached; try again shortly.")
	case err != nil:
		if errors.Is(err, directory.ErrAmbiguous) {
			s.log.Warn("directory sign-in refused: auth.ldap.user_filter matches several entries", "user", username)
		}
		return nil, refuse("directory refused the password")
	}
	u, err := s.svc.signInFromDirectory(ctx, e)
	switch {
	case errors.Is(err, errWrongCredentials):
		known = nil // the name is someone else's now
		return nil, refuse("name taken by a local user")
	case errors.Is(err, errDirectoryEmail):
		settled = true
		attempt.succeed(s.now()) // the password was right
		return nil, err
	case err != nil:
		return nil, err
	}
	settled = true
	attempt.succeed(s.now())
	s.metrics.directoryLogins.WithLabelValues("ok").Inc()
	return &principal{User: u, Scopes: s.cfg.Roles[string(u.Role)]}, nil
}

// directorySyncLoop runs the directory sync every DirectorySyncInterval,
// and once at start.
func (s *Server) directorySyncLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.DirectorySyncInterval)
	defer t.Stop()
	for {
		s.syncDirectory(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncDirectory runs one pass and logs what it did.
func (s *Server) syncDirectory(ctx context.Context) {
	res, err := s.svc.SyncDirectory(ctx)
	s.metrics.directoryRemoved.Add(float64(res.Removed))
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		s.metrics.directorySyncs.WithLabelValues("failed").Inc()
		s.log.Warn("directory sync failed", "checked", res.Checked, "updated", res.Updated, "removed", res.Removed, "err", err)
		return
	}
	s.metrics.directorySyncs.WithLabelValues("ok").Inc()
	if res.Updated > 0 || res.Removed > 0 {
		s.log.Info("directory sync", "checked", res.Checked, "updated", res.Updated, "removed", res.Removed)
	}
}
