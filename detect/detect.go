// Package detect finds leaks of personal CDN objects as records flow
// through the pipeline, without waiting for a scheduled query.
//
// A leak is an object generated for one session served from cache or by
// request collapsing to another session, where the object is personal:
// its path is configured personal or auth, its response carried a
// personal signal (private/no-store, Set-Cookie, Vary: Cookie or
// Authorization, an Authorization request without public), or the origin
// answered the same URL with different strong ETags for two sessions, or
// with as many different sizes as sessions for BodySessions sessions,
// within Window. A public page served from cache to many
// logged-in sessions is not a leak.
//
// Per cache key (host, path, query) the Detector remembers the session
// the latest origin fetch served (the session a cached copy was generated
// for), the personal signals seen so far and the last origin fetches, in
// an LRU bounded by MaxObjects. Findings go to a channel that an Alerter
// turns into grouped alerts and rows of leak_findings.
package detect

import (
	"container/list"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipe/logpipe/tables"
	"github.com/logpipe/logpipe/transform"
)

// Options bound the Detector.
type Options struct {
	// MaxObjects is how many cache keys are remembered (LRU); default
	// 100000 (at most about 85 MB: 850 bytes per key,
	// BenchmarkMemoryPerObject).
	MaxObjects int
	// Window: two origin fetches of one URL for different sessions within
	// it that returned different ETags or sizes are evidence that the
	// origin personalises the URL; default 60s.
	Window time.Duration
	// BodySessions is how many sessions with as many different body sizes
	// (within Window) show that the origin personalises a URL; default 4.
	// Two sessions with different strong ETags always do.
	BodySessions int
	// Buffer is the capacity of the findings channel; default 4096.
	// Findings beyond it are counted in Dropped, not waited for.
	Buffer int
}

// Finding is one response that leaked: a personal object served to
// Session although it was generated for Owner.
type Finding struct {
	Time        time.Time // request time
	Host        string
	Path        string
	Query       string
	Template    string
	Class       string
	Session     uint64 // keyed hash of the session that received it
	Owner       uint64 // keyed hash of the session it was generated for
	Collapsed   bool
	CacheStatus string
	Signals     transform.Signal
	Body        bool // the origin answered different sessions differently
	Meta        tables.Meta
	DetectedAt  time.Time
}

// Evidence lists why the object counts as personal: the row signals
// (class, private, set_cookie, vary, authorization) and "body".
func (f Finding) Evidence() string {
	s := f.Signals.String()
	if f.Body {
		if s != "" {
			s += ","
		}
		s += "body"
	}
	return s
}

// Detector keeps per-object state. Observe is safe for concurrent use
// (partition workers call it): objects are spread over shards by key
// hash, each with its own lock and LRU, so records of one URL meet
// whichever partition they came from.
type Detector struct {
	opts    Options
	seed    maphash.Seed
	shards  [shardCount]shard
	out     chan Finding
	Dropped atomic.Int64 // findings lost because the channel was full
	Seen    atomic.Int64 // CDN records observed
	Found   atomic.Int64 // findings emitted
}

const (
	shardCount = 16
	maxFetches = 8 // recent origin fetches kept per object
	maxPending = 4 // cross-session shares kept while an object looks public
)

type shard struct {
	mu      sync.Mutex
	objects map[string]*list.Element
	lru     *list.List
	key     []byte
}

type fetch struct {
	at      int64  // request time, Unix milliseconds
	session uint64 // 0 = anonymous
	etag    uint64 // hash of the ETag, 0 = none
	size    uint64
	strong  bool // a strong ETag (not W/)
}

// object is the state of one cache key.
type object struct {
	key        string
	signals    transform.Signal
	body       bool
	owner      uint64 // session the current copy was generated for; 0 = anonymous
	ownerKnown bool
	fetches    [maxFetches]fetch
	nfetch     int
	// Shares to other sessions seen while it looked public (a leak if
	// it turns out to be personal), oldest first.
	pending  [maxPending]share
	npending int
}

// share is a response served to a session other than its owner.
type share struct {
	at        int64 // request time, Unix milliseconds
	session   uint64
	owner     uint64
	collapsed bool
	status    string
	meta      tables.Meta
}

// New returns a Detector; read its findings from Findings.
func New(o Options) *Detector {
	if o.MaxObjects <= 0 {
		o.MaxObjects = 100_000
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.BodySessions <= 0 {
		o.BodySessions = 4
	}
	if o.BodySessions > maxFetches {
		o.BodySessions = maxFetches
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	d := &Detector{opts: o, seed: maphash.MakeSeed(), out: make(chan Finding, o.Buffer)}
	for i := range d.shards {
		d.shards[i] = shard{objects: map[string]*list.Element{}, lru: list.New()}
	}
	return d
}

// Findings delivers leaks as they are found.
func (d *Detector) Findings() <-chan Finding { return d.out }

// Objects is how many cache keys are remembered.
func (d *Detector) Objects() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Observe looks at one enriched CDN request (the pipeline's hook).
func (d *Detector) Observe(r *transform.CDNRequest, m tables.Meta) {
	d.Seen.Add(1)
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(r.Host)
	h.WriteByte(0)
	h.WriteString(r.Path)
	h.WriteByte('?')
	h.WriteString(r.Query)
	s := &d.shards[h.Sum64()%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = append(append(append(append(append(s.key[:0], r.Host...), 0), r.Path...), '?'), r.Query...)
	var o *object
	if e, ok := s.objects[string(s.key)]; ok {
		s.lru.MoveToFront(e)
		o = e.Value.(*object)
	} else {
		o = &object{key: string(s.key)}
		s.objects[o.key] = s.lru.PushFront(o)
		if s.lru.Len() > d.opts.MaxObjects/shardCount+1 {
			old := s.lru.Back()
			s.lru.Remove(old)
			delete(s.objects, old.Value.(*object).key)
		}
	}
	d.observe(o, r, m)
}

func (d *Detector) observe(o *object, r *transform.CDNRequest, m tables.Meta) {
	wasPersonal := o.personal()
	o.signals |= transform.PersonalSignals(r)
	shared := r.FromCache || r.Collapsed
	if !shared {
		// An origin fetch: the copy (if cached) is this session's.
		if r.SessionHash != 0 && r.Status == 200 && !o.body {
			copy(o.fetches[1:], o.fetches[:maxFetches-1])
			o.fetches[0] = fetch{at: r.Time.UnixMilli(), session: r.SessionHash, etag: d.etagHash(r.ETag), size: r.BytesSent, strong: strongETag(r.ETag)}
			o.nfetch = min(o.nfetch+1, maxFetches)
			o.body = d.personalised(o, r.Time)
		}
		if r.CacheStatus != transform.CachePass && r.CacheStatus != transform.CacheError && r.CacheStatus != transform.CacheSynth {
			o.owner, o.ownerKnown = r.SessionHash, true
		}
	} else if r.SessionHash != 0 {
		owner := o.owner
		if r.ETag != "" {
			// The ETag says which fetch the copy came from.
			h := d.etagHash(r.ETag)
			for i := 0; i < o.nfetch; i++ {
				if o.fetches[i].etag == h {
					owner = o.fetches[i].session
					break
				}
			}
		}
		switch {
		case !o.ownerKnown:
			// Served before any origin fetch was seen: presume it was
			// generated for the first session served.
			o.owner, o.ownerKnown = r.SessionHash, true
		case owner != 0 && owner != r.SessionHash:
			sh := share{at: r.Time.UnixMilli(), session: r.SessionHash, owner: owner, collapsed: r.Collapsed, status: r.CacheStatus, meta: m}
			if o.personal() {
				d.emit(o, finding(r, sh))
			} else {
				// Normal for a public page; a leak if the object turns
				// out to be personal soon.
				if o.npending == maxPending {
					copy(o.pending[:], o.pending[1:])
					o.npending--
				}
				o.pending[o.npending] = sh
				o.npending++
			}
		}
	}
	if !wasPersonal && o.personal() {
		for _, sh := range o.pending[:o.npending] {
			if time.Duration(r.Time.UnixMilli()-sh.at)*time.Millisecond <= 10*d.opts.Window {
				d.emit(o, finding(r, sh))
			}
		}
		o.pending, o.npending = [maxPending]share{}, 0
	}
}

// finding describes sh, a response for the URL of r.
func finding(r *transform.CDNRequest, sh share) Finding {
	// Strings of r alias reused buffers: keep copies.
	return Finding{
		Time: time.UnixMilli(sh.at).UTC(), Host: strings.Clone(r.Host), Path: strings.Clone(r.Path), Query: strings.Clone(r.Query),
		Template: strings.Clone(r.PathTemplate), Class: strings.Clone(r.PathClass), Session: sh.session, Owner: sh.owner,
		Collapsed: sh.collapsed, CacheStatus: strings.Clone(sh.status), Meta: sh.meta,
	}
}

// personalised reports whether the recent origin fetches of o (within
// Window of at) show that the origin answers sessions differently: two
// sessions got different strong ETags, or BodySessions sessions got as
// many different sizes (a public page's encodings - br, gzip, identity -
// give a few sizes shared by many sessions; personal pages one per
// session).
func (d *Detector) personalised(o *object, at time.Time) bool {
	var sessions, sizes [maxFetches]uint64
	ns, nz := 0, 0
	add := func(set *[maxFetches]uint64, n *int, v uint64) {
		for i := 0; i < *n; i++ {
			if set[i] == v {
				return
			}
		}
		set[*n] = v
		*n++
	}
	near := func(f fetch) bool { return time.Duration(abs(at.UnixMilli()-f.at))*time.Millisecond <= d.opts.Window }
	for i := 0; i < o.nfetch; i++ {
		f := o.fetches[i]
		if !near(f) {
			continue
		}
		for j := 0; j < i; j++ {
			g := o.fetches[j]
			if g.session != f.session && near(g) && f.strong && g.strong && f.etag != g.etag {
				return true
			}
		}
		add(&sessions, &ns, f.session)
		add(&sizes, &nz, f.size)
	}
	return ns >= d.opts.BodySessions && nz >= ns
}

func strongETag(e string) bool { return e != "" && !strings.HasPrefix(e, "W/") }

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// etagHash identifies an ETag in 8 bytes; 0 = none.
func (d *Detector) etagHash(e string) uint64 {
	if e == "" {
		return 0
	}
	return maphash.String(d.seed, e) | 1
}

func (o *object) personal() bool { return o.signals != 0 || o.body }

func (d *Detector) emit(o *object, f Finding) {
	f.Signals, f.Body, f.DetectedAt = o.signals, o.body, time.Now()
	select {
	case d.out <- f:
		d.Found.Add(1)
	default:
		d.Dropped.Add(1)
	}
}
