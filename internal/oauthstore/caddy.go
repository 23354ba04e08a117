package oauthstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// storeEntryMagic starts every entry CaddyStore writes; an entry without it
// is corrupt.
const storeEntryMagic = "oas1"

// CaddyStore is a Store on Caddy's storage (ctx.Storage(): the file system
// by default, or any storage module). State survives restarts; instances
// that share the storage share the state. Atomic operations take the
// storage's lock, which on the file system polls once a second under
// contention: fine for one machine, Redis is the choice for a cluster.
type CaddyStore struct {
	storage certmagic.Storage
	prefix  string
	logger  *zap.Logger
	now     func() time.Time
}

// NewCaddyStore keeps entries under prefix in storage.
func NewCaddyStore(storage certmagic.Storage, prefix string, logger *zap.Logger) *CaddyStore {
	return &CaddyStore{storage: storage, prefix: prefix, logger: logger, now: time.Now}
}

func (s *CaddyStore) path(key string) string { return path.Join(s.prefix, key) }

// StoreIdentity implements Identifier with the storage's own description
// (certmagic's FileStorage: its path) and the prefix. A storage module
// that does not describe itself (fmt.Stringer) gives the store no
// identity.
func (s *CaddyStore) StoreIdentity() string {
	str, ok := s.storage.(fmt.Stringer)
	if !ok {
		return ""
	}
	return fmt.Sprintf("caddy %T %s prefix %s", s.storage, str.String(), s.prefix)
}

// lockName is the storage lock guarding one key.
func (s *CaddyStore) lockName(key string) string {
	sum := sha256.Sum256([]byte(s.path(key)))
	return "oauth_store_" + hex.EncodeToString(sum[:16])
}

func encodeEntry(value []byte, exp time.Time) []byte {
	b := make([]byte, len(storeEntryMagic)+8, len(storeEntryMagic)+8+len(value))
	copy(b, storeEntryMagic)
	var n int64
	if !exp.IsZero() {
		n = exp.UnixNano()
	}
	binary.BigEndian.PutUint64(b[len(storeEntryMagic):], uint64(n))
	return append(b, value...)
}

// errCorruptEntry reports stored bytes that are not an entry.
var errCorruptEntry = errors.New("corrupt store entry")

func decodeEntry(b []byte) (value []byte, exp time.Time, err error) {
	if len(b) < len(storeEntryMagic)+8 || string(b[:len(storeEntryMagic)]) != storeEntryMagic {
		return nil, time.Time{}, errCorruptEntry
	}
	if n := int64(binary.BigEndian.Uint64(b[len(storeEntryMagic):])); n != 0 {
		exp = time.Unix(0, n)
	}
	return b[len(storeEntryMagic)+8:], exp, nil
}

// load reads a live entry. An expired entry is deleted; a corrupt one is
// logged and treated as absent, never returned.
func (s *CaddyStore) load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.storage.Load(ctx, s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, exp, err := decodeEntry(b)
	if err != nil {
		s.logger.Error("corrupt store entry treated as absent", zap.String("key", key), zap.Int("bytes", len(b)))
		return nil, ErrNotFound
	}
	if !exp.IsZero() && !s.now().Before(exp) {
		if err := s.storage.Delete(ctx, s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logger.Warn("deleting expired store entry", zap.String("key", key), zap.Error(err))
		}
		return nil, ErrNotFound
	}
	return v, nil
}

// locked runs fn holding the storage lock of key.
func (s *CaddyStore) locked(ctx context.Context, key string, fn func() error) error {
	name := s.lockName(key)
	if err := s.storage.Lock(ctx, name); err != nil {
		return err
	}
	defer func() {
		if err := s.storage.Unlock(context.WithoutCancel(ctx), name); err != nil {
			s.logger.Error("unlocking store key", zap.String("key", key), zap.Error(err))
		}
	}()
	return fn()
}

// Get implements Store.
func (s *CaddyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, errBadKey
	}
	return s.load(ctx, key)
}

// Put implements Store.
func (s *CaddyStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if !ValidKey(key) {
		return errBadKey
	}
	return s.storage.Store(ctx, s.path(key), encodeEntry(value, expiry(s.now(), ttl)))
}

// PutIfAbsent implements Store.
func (s *CaddyStore) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if !ValidKey(key) {
		return false, errBadKey
	}
	stored := false
	err := s.locked(ctx, key, func() error {
		if _, err := s.load(ctx, key); !errors.Is(err, ErrNotFound) {
			return err // nil: present
		}
		if err := s.storage.Store(ctx, s.path(key), encodeEntry(value, expiry(s.now(), ttl))); err != nil {
			return err
		}
		stored = true
		return nil
	})
	return stored, err
}

// Take implements Store.
func (s *CaddyStore) Take(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, errBadKey
	}
	var v []byte
	err := s.locked(ctx, key, func() error {
		var err error
		if v, err = s.load(ctx, key); err != nil {
			return err
		}
		return s.storage.Delete(ctx, s.path(key))
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Delete implements Store.
func (s *CaddyStore) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return errBadKey
	}
	if err := s.storage.Delete(ctx, s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List implements Store. It reads every entry under the prefix's directory
// to drop expired ones, so it is for administration, not request paths.
func (s *CaddyStore) List(ctx context.Context, prefix string) ([]string, error) {
	dir := prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
	} else {
		dir = ""
	}
	paths, err := s.storage.List(ctx, path.Join(s.prefix, dir), true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		key := strings.TrimPrefix(p, s.prefix+"/")
		if !strings.HasPrefix(key, prefix) || !ValidKey(key) {
			continue
		}
		if _, err := s.load(ctx, key); err == nil {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out, nil
}

var _ Store = (*CaddyStore)(nil)

// Sweep deletes the expired entries under the store's prefix, as Caddy
// cleans expired certificates out of its storage: codes, sessions and
// replay markers that nobody reads again would otherwise pile up, since on
// Caddy storage an entry expires only when it is read. Each expired entry
// is deleted under its key's lock after a second look, so a PutIfAbsent or
// Take racing the sweep is not undone; corrupt entries are left for an
// operator (a read logs them). It returns how many entries it removed.
func (s *CaddyStore) Sweep(ctx context.Context) (int, error) {
	paths, err := s.storage.List(ctx, s.prefix, true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		key := strings.TrimPrefix(p, s.prefix+"/")
		if !ValidKey(key) || !s.expired(ctx, key) {
			continue
		}
		err := s.locked(ctx, key, func() error {
			if !s.expired(ctx, key) {
				return nil
			}
			if err := s.storage.Delete(ctx, s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
			return nil
		})
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// expired reports whether key holds a well-formed entry past its expiry.
func (s *CaddyStore) expired(ctx context.Context, key string) bool {
	b, err := s.storage.Load(ctx, s.path(key))
	if err != nil {
		return false // a directory, gone meanwhile, or unreadable
	}
	_, exp, err := decodeEntry(b)
	return err == nil && !exp.IsZero() && !s.now().Before(exp)
}

// SweepEvery is how often a running gateway sweeps its Caddy-storage store.
const SweepEvery = time.Hour
