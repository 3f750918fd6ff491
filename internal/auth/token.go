package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"sync"
	"time"
)

// Simple tokens, as etcd's "simple" provider, with one difference: the
// log carries only a token's SHA-256 (TokenHash), never the token, so no
// WAL record or backup holds a usable credential. Every member learns the
// hash when the Authenticate entry is applied; a token then works on any
// member until it has been unused for the TTL or the auth revision moved
// past the one it was issued at.

// NewToken returns a random token (etcd's shape: 16 letters, a dot, a
// number).
func NewToken(seq uint64) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 16)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(letters))))
		b[i] = letters[n.Int64()]
	}
	return string(b) + "." + big.NewInt(0).SetUint64(seq).String()
}

// TokenHash is what the log carries for a token.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

type tokenInfo struct {
	user     string
	revision uint64
	expires  time.Time
}

// Tokens are the simple tokens known to this member, by hash.
type Tokens struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	byHash map[string]*tokenInfo
}

// NewTokens keeps tokens for ttl after their last use.
func NewTokens(ttl time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return &Tokens{ttl: ttl, now: time.Now, byHash: map[string]*tokenInfo{}}
}

// Add records a token hash applied from the log.
func (t *Tokens) Add(hash, user string, revision uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gcLocked()
	t.byHash[hash] = &tokenInfo{user: user, revision: revision, expires: t.now().Add(t.ttl)}
}

// Resolve returns the token's user and the auth revision it was issued
// at, extending its life.
func (t *Tokens) Resolve(token string) (string, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ti, ok := t.byHash[TokenHash(token)]
	if !ok || t.now().After(ti.expires) {
		return "", 0, ErrInvalidAuthToken
	}
	ti.expires = t.now().Add(t.ttl)
	return ti.user, ti.revision, nil
}

// gcLocked drops expired tokens (bounded work: called on every Add).
func (t *Tokens) gcLocked() {
	now := t.now()
	for h, ti := range t.byHash {
		if now.After(ti.expires) {
			delete(t.byHash, h)
		}
	}
}
