package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition. Func returns nil when it holds, or the
// reason it does not.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// ClickHouseCheck holds when ping, which pings the ClickHouse server,
// succeeds.
func ClickHouseCheck(ping func(context.Context) error) Check {
	return Check{Name: "clickhouse", Func: ping}
}

// Generationer is what ConsumerCheck needs of ingest.Consumer.
type Generationer interface {
	Generation() (int32, bool)
}

// ConsumerCheck holds while the consumer is a member of an active
// consumer-group generation (joined, not rebalancing, not stopped).
func ConsumerCheck(c Generationer) Check {
	return Check{Name: "kafka", Func: func(context.Context) error {
		if _, ok := c.Generation(); !ok {
			return errors.New("consumer group has no active generation (joining or rebalancing)")
		}
		return nil
	}}
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// Handler serves /metrics from reg, /healthz (200 while the process
// serves HTTP at all) and /readyz (200 when every check holds, else 503
// with the reasons, one a line).
func Handler(reg *prometheus.Registry, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var failed []string
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
			err := c.Func(ctx)
			cancel()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", c.Name, err))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(failed, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Server is a running HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Start listens on addr (host:port; port 0 picks a free one) and serves h
// in the background.
func Start(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		ln:  ln,
		err: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err <- err
	}()
	log.Info("serving metrics and health", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting requests in flight finish for up to 5s.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	return <-s.err
}
