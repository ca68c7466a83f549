package deploydb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// sign is crypto/hmac's HMAC-SHA256, truncated, for secrets shorter than,
// equal to and longer than a SHA-256 block; scopeOf and the piecewise scope
// builders hash the parts as before (each followed by a zero byte).
func TestCursorSignMatchesHMAC(t *testing.T) {
	body := []byte("0123456789012345678901234")
	for _, secret := range [][]byte{nil, []byte("k"), defaultCursorSecret, []byte(strings.Repeat("s", 64)), []byte(strings.Repeat("long secret ", 20))} {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		want := m.Sum(nil)[:cursorMACLen]
		got := make([]byte, cursorMACLen)
		cursorCodec{secret: secret}.sign(got, body)
		if string(got) != string(want) {
			t.Fatalf("secret of %d bytes: sign = %x, hmac = %x", len(secret), got, want)
		}
	}
	h := sha256.New()
	for _, p := range []string{"deployments", "42", "", "production", "created_at", "desc", "-62135596800000000", "253402300799000000"} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	want := binary.BigEndian.Uint64(h.Sum(nil))
	if got := scopeOf("deployments", "42", "", "production", "created_at", "desc", "-62135596800000000", "253402300799000000"); got != want {
		t.Fatalf("scopeOf = %x, want %x", got, want)
	}
	l, err := DeploymentFilter{AppID: 42, Environment: "production"}.validate("op")
	if err != nil {
		t.Fatal(err)
	}
	if l.scope != want {
		t.Fatalf("validate's scope = %x, want %x", l.scope, want)
	}
}

// The success path of paging allocates only the next cursor's string.
func TestCursorAllocations(t *testing.T) {
	c := cursorCodec{secret: defaultCursorSecret}
	pos := position{at: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), id: 7}
	var s string
	if n := testing.AllocsPerRun(100, func() { s = c.encode(scopeOf("builds", "1"), pos) }); n > 1 {
		t.Errorf("encode: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.decode("op", scopeOf("builds", "1"), s); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("decode: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := (DeploymentFilter{AppID: 42, Status: DeploymentDeployed}).validate("op"); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("validate: %v allocations", n)
	}
}
