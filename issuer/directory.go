package issuer

import (
	"context"
	"errors"
	"time"

	"github.com/signet-auth/signet/directory"
)

// checkDirectoryPassword is checkPassword for a username that is not a
// local user: a directory user, or someone the directory may know. The
// failure limits were checked by the caller; a refused password counts
// against them and is answered like a wrong local password. A directory
// that cannot be asked answers 503 and counts nothing: no password was
// checked.
func (s *Server) checkDirectoryPassword(ctx context.Context, username, password, client string, now time.Time) (*principal, error) {
	dir := s.cfg.Directory
	switch {
	case dir == nil:
		// A directory user, but auth.ldap is no longer configured.
		s.metrics.directoryLogins.WithLabelValues("refused").Inc()
		return nil, s.loginFailed(ctx, username, client, now, nil, "directory sign-in is not configured")
	case !validName(username) || password == "":
		// Never a directory question: no user could have this name, and
		// an empty password must never reach a bind.
		s.metrics.directoryLogins.WithLabelValues("refused").Inc()
		return nil, s.loginFailed(ctx, username, client, now, nil, "unknown user")
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
		s.metrics.directoryLogins.WithLabelValues("refused").Inc()
		return nil, s.loginFailed(ctx, username, client, now, nil, "directory refused the password")
	}
	u, err := s.svc.signInFromDirectory(ctx, e)
	if err != nil {
		if errors.Is(err, errWrongCredentials) {
			return nil, s.loginFailed(ctx, username, client, now, nil, "name taken by a local user")
		}
		return nil, err
	}
	s.metrics.directoryLogins.WithLabelValues("ok").Inc()
	s.limiter.succeed(username)
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
