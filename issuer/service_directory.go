package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/directory"
	"github.com/signet-auth/signet/store"
)

// The directory rules (auth.ldap): a username that is not a local user is
// checked against the directory; its first successful sign-in creates the
// user in the configured organization, with the directory's email and a
// role from the admin group; every sign-in and every sync pass bring email
// and role in line with the directory; the sync removes, exactly as
// DELETE /users/{name} does, every directory user the directory no longer
// holds. A directory that cannot be read completely removes nobody.

// Directory is what the issuer needs of a user directory. The directory
// package's *LDAP implements it.
type Directory interface {
	// Authenticate checks username's password and returns their entry:
	// directory.ErrInvalidCredentials for a wrong or empty password or a
	// user the directory does not hold, directory.ErrUnavailable when the
	// directory cannot be asked.
	Authenticate(ctx context.Context, username, password string) (directory.Entry, error)
	// Lookup returns the entries the directory holds of usernames; a name
	// missing from the map has left the directory. Any error means
	// nothing is known about anyone.
	Lookup(ctx context.Context, usernames []string) (map[string]directory.Entry, error)
}

// directoryActor names the directory sync in the audit log.
const directoryActor = "ldap-sync"

// directoryPrincipal is the issuer acting for the directory: it creates,
// changes and removes directory users, in the directory's organization,
// and no one else.
func directoryPrincipal() *Principal {
	return &Principal{cli: true, system: directoryActor, Client: "directory", Scopes: []string{"*"}}
}

// roleOf is the role the directory gives e.
func roleOf(e directory.Entry) store.Role {
	if e.Admin {
		return store.RoleAdmin
	}
	return store.RoleMember
}

// errDirectoryEmail refuses a directory user without a usable email.
var errDirectoryEmail = errorf(ECodeForbidden,
	"Your directory entry has no usable email address; ask the directory's administrators to set one, then sign in again.")

// signInFromDirectory records a successful directory sign-in of e: the
// user is created on their first, and their email and role follow the
// directory on every one. errWrongCredentials when a local user holds the
// name (local users win: they were there first, or an admin made them).
func (s *Service) signInFromDirectory(ctx context.Context, e directory.Entry) (store.User, error) {
	for attempt := 0; ; attempt++ {
		u, err := s.st.GetUser(ctx, e.Username)
		switch {
		case errors.Is(err, store.ErrNotFound):
			u, err = s.createDirectoryUser(ctx, e)
			if errors.Is(err, store.ErrConflict) && attempt == 0 {
				continue // another sign-in or replica created them first
			}
			return u, err
		case err != nil:
			return store.User{}, fmt.Errorf("look up user: %w", err)
		case u.Source != store.SourceLDAP:
			return store.User{}, errWrongCredentials
		}
		u, _, err = s.followDirectory(ctx, directoryPrincipal(), u, e)
		return u, err
	}
}

// createDirectoryUser creates e's user: no password hash (the directory
// holds the password), the directory's email, role and organization.
func (s *Service) createDirectoryUser(ctx context.Context, e directory.Entry) (store.User, error) {
	now := s.now().UTC()
	u := store.User{
		Username:  e.Username,
		Email:     e.Email,
		Org:       s.cfg.DirectoryOrg,
		Role:      roleOf(e),
		Source:    store.SourceLDAP,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if !validName(u.Username) {
		return store.User{}, errWrongCredentials
	}
	if validateEmail(u.Email) != nil {
		return store.User{}, errDirectoryEmail
	}
	var err error
	if u.ID, err = store.NewUserID(); err != nil {
		return store.User{}, err
	}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return store.User{}, fmt.Errorf("create directory user: %w", err)
	}
	s.committed(ctx, directoryPrincipal(), change{org: u.Org, action: "user.add", target: u.Username,
		detail: "first directory sign-in; role " + string(u.Role)})
	return s.storedUser(ctx, u)
}

// storedUser reads u back as the store holds it (times at the store's
// precision, which the rest of the issuer compares against): errNoUser
// when the name is no longer u's.
func (s *Service) storedUser(ctx context.Context, u store.User) (store.User, error) {
	got, err := s.st.GetUser(ctx, u.Username)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && got.ID != u.ID):
		return store.User{}, errNoUser
	case err != nil:
		return store.User{}, fmt.Errorf("read directory user: %w", err)
	}
	return got, nil
}

// followDirectory brings u's email and role in line with e and returns
// the user as stored and whether it changed. An email the directory holds that signet cannot use
// keeps the old one. A new role that holds less than the old one revokes
// the user's personal tokens issued until now, which may carry scopes the
// user no longer holds.
func (s *Service) followDirectory(ctx context.Context, p *Principal, u store.User, e directory.Entry) (store.User, bool, error) {
	next := u
	next.Role = roleOf(e)
	if e.Email != u.Email && validateEmail(e.Email) == nil {
		next.Email = e.Email
	}
	if next.Role == u.Role && next.Email == u.Email {
		return u, false, nil
	}
	now := s.now()
	var before, expires time.Time
	detail := "from the directory:"
	if next.Email != u.Email {
		detail += " email changed"
	}
	if next.Role != u.Role {
		detail += fmt.Sprintf(" role %s → %s", u.Role, next.Role)
	}
	_, lost := uncovered(s.cfg.Roles[string(next.Role)], s.cfg.Roles[string(u.Role)])
	if lost {
		before, expires = now, now.Add(s.cfg.MaxTTL)
		detail += "; personal tokens revoked"
	}
	if err := s.st.UpdateUser(ctx, next, now, before, expires); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, false, errNoUser // removed or replaced meanwhile
		}
		return store.User{}, false, fmt.Errorf("update directory user: %w", err)
	}
	ch := change{org: u.Org, action: "user.update", target: u.Username, detail: detail}
	if lost {
		ch.revoked = "role_change"
	}
	s.committed(ctx, p, ch)
	next, err := s.storedUser(ctx, next)
	return next, err == nil, err
}

// DirectorySync is what one pass of the directory sync did.
type DirectorySync struct {
	// Checked is how many directory users were looked up.
	Checked int
	// Updated is how many had their email or role changed.
	Updated int
	// Removed is how many were removed, their personal tokens revoked.
	Removed int
}

// SyncDirectory checks every directory user against the directory: one
// it no longer holds (deleted, or outside the user filter) is removed as
// DELETE /users/{name} removes a user, with every personal token revoked
// and their subject cut off; the others get the directory's email and
// role. When the directory cannot be read completely, nobody is changed
// and the error says why. Errors of single users are joined; the pass
// goes on with the others.
func (s *Service) SyncDirectory(ctx context.Context) (DirectorySync, error) {
	var res DirectorySync
	if s.cfg.Directory == nil {
		return res, errors.New("directory sync: no directory is configured")
	}
	all, err := s.st.ListUsers(ctx, "")
	if err != nil {
		return res, fmt.Errorf("directory sync: list users: %w", err)
	}
	var users []store.User
	var names []string
	for _, u := range all {
		if u.Source == store.SourceLDAP {
			users = append(users, u)
			names = append(names, u.Username)
		}
	}
	if len(users) == 0 {
		return res, nil
	}
	found, err := s.cfg.Directory.Lookup(ctx, names)
	if err != nil {
		return res, fmt.Errorf("directory sync: nobody changed: %w", err)
	}
	res.Checked = len(users)
	p := directoryPrincipal()
	var errs []error
	for _, u := range users {
		e, ok := found[u.Username]
		if !ok {
			switch _, err := s.RemoveUser(ctx, p, u.Username); {
			case errors.Is(err, errNoUser): // removed meanwhile, or now someone else's name
			case err != nil:
				errs = append(errs, fmt.Errorf("remove %s: %w", u.Username, err))
			default:
				res.Removed++
			}
			continue
		}
		_, changed, err := s.followDirectory(ctx, p, u, e)
		switch {
		case errors.Is(err, errNoUser):
		case err != nil:
			errs = append(errs, fmt.Errorf("update %s: %w", u.Username, err))
		case changed:
			res.Updated++
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("directory sync: %w", errors.Join(errs...))
	}
	return res, nil
}
