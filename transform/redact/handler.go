package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler is a slog.Handler that redacts the message and every attribute
// value (strings, errors, anything printed) before passing the record on:
// log lines may quote a rejected line or a parser error. Addresses of the
// machines logpipe talks to are kept when private or loopback (see Log).
type Handler struct {
	h slog.Handler
	r *Redactor
}

// NewHandler wraps h.
func NewHandler(h slog.Handler, r *Redactor) *Handler { return &Handler{h, r} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.StringMode(rec.Message, Log), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &Handler{h.h.WithAttrs(red), h.r}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{h.h.WithGroup(name), h.r} }

func (h *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.StringMode(v.String(), Log))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = h.attr(x)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.StringMode(x.Error(), Log))
		case fmt.Stringer:
			return slog.String(a.Key, h.r.StringMode(x.String(), Log))
		default:
			return slog.String(a.Key, h.r.StringMode(fmt.Sprint(x), Log))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
