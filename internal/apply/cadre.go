package apply

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Cadre's own entries ride in the raft log beside etcd's requests: a normal
// entry whose first byte is 0 (no protobuf message starts with a zero byte,
// field number 0 being invalid), then a kind byte, then JSON. etcd's
// requests are untouched, and an entry of an unknown kind is refused the
// same way on every member.
const (
	cadreEntryMarker = 0
	kindAutopilot    = 1
	kindIncarnation  = 2
)

// incarnationEntry records the data dir incarnation a member runs with.
type incarnationEntry struct {
	ID          uint64 `json:"id"`
	Member      uint64 `json:"member"`
	Incarnation uint64 `json:"incarnation"`
}

// EncodeIncarnation is the entry recording member's data dir incarnation.
func EncodeIncarnation(id, member, incarnation uint64) []byte {
	b, err := json.Marshal(incarnationEntry{ID: id, Member: member, Incarnation: incarnation})
	if err != nil {
		panic(fmt.Sprintf("apply: encoding an incarnation entry cannot fail: %v", err))
	}
	return append([]byte{cadreEntryMarker, kindIncarnation}, b...)
}

// autopilotEntry sets autopilot settings ("key=value", applied in order).
type autopilotEntry struct {
	ID       uint64   `json:"id"`
	Settings []string `json:"settings"`
}

// ErrBadCadreEntry is the result of a Cadre entry that does not decode.
var ErrBadCadreEntry = errors.New("apply: undecodable Cadre entry")

// EncodeAutopilotSet is the entry that applies settings to the replicated
// autopilot configuration; id is the proposer's request ID.
func EncodeAutopilotSet(id uint64, settings []string) []byte {
	b, err := json.Marshal(autopilotEntry{ID: id, Settings: settings})
	if err != nil {
		panic(fmt.Sprintf("apply: encoding an autopilot entry cannot fail: %v", err))
	}
	return append([]byte{cadreEntryMarker, kindAutopilot}, b...)
}

// CadreEntryID is the request ID of one of Cadre's own entries (ok false
// for any other entry), so a dropped one can be proposed again.
func CadreEntryID(data []byte) (uint64, bool) {
	if !isCadreEntry(data) || len(data) < 2 {
		return 0, false
	}
	var e struct {
		ID uint64 `json:"id"`
	}
	if json.Unmarshal(data[2:], &e) != nil || e.ID == 0 {
		return 0, false
	}
	return e.ID, true
}

// isCadreEntry reports whether data is one of Cadre's own entries.
func isCadreEntry(data []byte) bool { return len(data) > 0 && data[0] == cadreEntryMarker }

// applyCadre applies one of Cadre's own entries. The settings are checked
// again here (the same code on every member), so a bad one changes nothing
// anywhere.
func (a *Applier) applyCadre(b Batch, data []byte) (Result, bool) {
	if len(data) >= 2 && data[1] == kindIncarnation {
		var e incarnationEntry
		if err := json.Unmarshal(data[2:], &e); err != nil || e.Incarnation == 0 {
			return Result{Err: fmt.Errorf("%w: %v", ErrBadCadreEntry, err)}, false
		}
		if err := a.cfg.Members.SetIncarnation(e.Member, e.Incarnation); err != nil {
			a.lg.Warn("refused a data dir incarnation", "member", membership.IDString(e.Member), "error", err.Error())
			return Result{ID: e.ID, Err: err}, false
		}
		return Result{ID: e.ID}, true
	}
	return a.applyAutopilot(b, data), false
}

// applyAutopilot applies an autopilot settings entry.
func (a *Applier) applyAutopilot(b Batch, data []byte) Result {
	if len(data) < 2 || data[1] != kindAutopilot {
		return Result{Err: ErrBadCadreEntry}
	}
	var e autopilotEntry
	if err := json.Unmarshal(data[2:], &e); err != nil {
		return Result{Err: fmt.Errorf("%w: %v", ErrBadCadreEntry, err)}
	}
	cfg, err := membership.LoadAutopilot(b.Meta(schema.MetaAutopilot))
	if err != nil {
		a.lg.Warn("stored autopilot configuration unreadable; starting from the defaults", "error", err.Error())
	}
	for _, kv := range e.Settings {
		if err := cfg.Set(kv); err != nil {
			return Result{ID: e.ID, Err: err}
		}
	}
	raw, _ := json.Marshal(cfg)
	b.SetMeta(schema.MetaAutopilot, raw)
	a.lg.Info("autopilot configuration changed", "settings", e.Settings, "now", cfg.Pairs())
	return Result{ID: e.ID}
}
