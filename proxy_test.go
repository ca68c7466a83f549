package deploydb_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// replyProxy forwards TCP connections, on loopback, to the test's
// PostgreSQL server. Every message the server sends passes through
// onReply, with state of its own per connection, which says what to write
// to the client (nil for nothing) or to drop the connection.
type replyProxy struct {
	ln      net.Listener
	target  string
	onReply func(conn *proxyConn, typ byte, body []byte) (out []byte, drop bool)
	wg      sync.WaitGroup
}

// proxyConn is what onReply keeps about one connection.
type proxyConn struct {
	held []byte // a message withheld for later
}

// message frames a protocol message.
func message(typ byte, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4)), body...)
}

// proxiedPool starts a replyProxy in front of a fresh database of the
// test's server and returns a pool that connects through it.
func proxiedPool(t *testing.T, ctx context.Context, onReply func(*proxyConn, byte, []byte) ([]byte, bool)) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyProxy{ln: ln, target: u.Host, onReply: onReply}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // runs before the proxy stops
	return pool
}

func (p *replyProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.pipe(c) }()
	}
}

func (p *replyProxy) pipe(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	r := bufio.NewReader(server)
	var conn proxyConn
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		out, drop := p.onReply(&conn, hdr[0], body)
		if drop {
			return
		}
		if out != nil {
			if _, err := client.Write(out); err != nil {
				return
			}
		}
	}
}
