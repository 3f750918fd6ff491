package membership

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Autopilot is the replicated autopilot configuration: what the leader may
// do to the membership by itself. Every field is off unless set
// (`cadrectl autopilot set`), so the etcd workflows stay unchanged.
type Autopilot struct {
	// PromoteLearners: a started learner that has been caught up
	// (MaxLearnerLag) and connected to the leader for PromoteAfter is
	// promoted, when the promotion passes the same checks as `member
	// promote`.
	PromoteLearners bool
	PromoteAfter    time.Duration
	// UnstartedTTL, if non-zero: a member added but never started within
	// it is removed, when the removal passes the quorum-safety checks.
	UnstartedTTL time.Duration
}

// DefaultAutopilot is the configuration of a cluster nobody configured.
func DefaultAutopilot() Autopilot { return Autopilot{PromoteAfter: 10 * time.Second} }

// Autopilot setting names, as `cadrectl autopilot set` takes them.
const (
	SettingPromoteLearners = "promote-learners"
	SettingPromoteAfter    = "promote-after"
	SettingUnstartedTTL    = "unstarted-ttl"
)

// Bounds on the durations, so a typo cannot make autopilot act at once or
// never: at least 1 s (a promotion needs a stable period; a member needs
// time to start), at most 30 days.
const (
	minAutopilotDuration = time.Second
	maxAutopilotDuration = 30 * 24 * time.Hour
)

// AutopilotSettings lists the settings with what each takes.
func AutopilotSettings() string {
	return SettingPromoteLearners + "=true|false, " + SettingPromoteAfter + "=<duration ≥ 1s>, " +
		SettingUnstartedTTL + "=<duration ≥ 1s, or 0 for off>"
}

// Set applies one "key=value" to a, or says what is wrong with it.
func (a *Autopilot) Set(kv string) error {
	key, val, ok := strings.Cut(kv, "=")
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if !ok || key == "" {
		return fmt.Errorf("autopilot setting %q: expected key=value; settings are %s", kv, AutopilotSettings())
	}
	switch key {
	case SettingPromoteLearners:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("autopilot setting %s=%q: expected true or false", key, val)
		}
		a.PromoteLearners = b
	case SettingPromoteAfter:
		d, err := parseAutopilotDuration(key, val, false)
		if err != nil {
			return err
		}
		a.PromoteAfter = d
	case SettingUnstartedTTL:
		d, err := parseAutopilotDuration(key, val, true)
		if err != nil {
			return err
		}
		a.UnstartedTTL = d
	default:
		return fmt.Errorf("unknown autopilot setting %q; settings are %s", key, AutopilotSettings())
	}
	return nil
}

func parseAutopilotDuration(key, val string, zeroOff bool) (time.Duration, error) {
	if zeroOff && (val == "0" || val == "off") {
		return 0, nil
	}
	d, err := time.ParseDuration(val)
	if err != nil || d < minAutopilotDuration || d > maxAutopilotDuration {
		off := ""
		if zeroOff {
			off = ", or 0 for off"
		}
		return 0, fmt.Errorf("autopilot setting %s=%q: expected a duration from %v to %v (like 10s or 10m)%s", key, val, minAutopilotDuration, maxAutopilotDuration, off)
	}
	return d, nil
}

// Pairs is a as key=value settings, sorted by key.
func (a Autopilot) Pairs() []string {
	ttl := "0"
	if a.UnstartedTTL > 0 {
		ttl = a.UnstartedTTL.String()
	}
	out := []string{
		SettingPromoteLearners + "=" + strconv.FormatBool(a.PromoteLearners),
		SettingPromoteAfter + "=" + a.PromoteAfter.String(),
		SettingUnstartedTTL + "=" + ttl,
	}
	sort.Strings(out)
	return out
}

type autopilotJSON struct {
	PromoteLearners bool   `json:"promoteLearners"`
	PromoteAfter    string `json:"promoteAfter"`
	UnstartedTTL    string `json:"unstartedTTL"`
}

// MarshalJSON writes durations as Go duration strings.
func (a Autopilot) MarshalJSON() ([]byte, error) {
	return json.Marshal(autopilotJSON{a.PromoteLearners, a.PromoteAfter.String(), a.UnstartedTTL.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (a *Autopilot) UnmarshalJSON(b []byte) error {
	var in autopilotJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	pa, err := time.ParseDuration(in.PromoteAfter)
	if err != nil {
		return fmt.Errorf("autopilot promoteAfter %q: %w", in.PromoteAfter, err)
	}
	ttl, err := time.ParseDuration(in.UnstartedTTL)
	if err != nil {
		return fmt.Errorf("autopilot unstartedTTL %q: %w", in.UnstartedTTL, err)
	}
	*a = Autopilot{PromoteLearners: in.PromoteLearners, PromoteAfter: pa, UnstartedTTL: ttl}
	return nil
}

// LoadAutopilot decodes the stored configuration; none stored is the
// default.
func LoadAutopilot(raw []byte) (Autopilot, error) {
	a := DefaultAutopilot()
	if len(raw) == 0 {
		return a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return DefaultAutopilot(), fmt.Errorf("membership: stored autopilot configuration: %w", err)
	}
	return a, nil
}

// AutopilotStatus is what `cadrectl autopilot get` shows: the settings,
// and the members added but not yet started with how long they have
// waited (by the answering member's clock against the leader's at add).
type AutopilotStatus struct {
	Settings  Autopilot         `json:"settings"`
	Unstarted []UnstartedMember `json:"unstarted"`
}

// UnstartedMember is one member added but never started.
type UnstartedMember struct {
	ID       string   `json:"id"`
	PeerURLs []string `json:"peerURLs"`
	AddedAt  int64    `json:"addedAt,omitempty"` // Unix seconds; 0 if added before Cadre recorded it
	Waiting  string   `json:"waiting,omitempty"`
}

// NewAutopilotStatus reports cfg and the unstarted members of ms at now.
func NewAutopilotStatus(cfg Autopilot, ms []*Member, now time.Time) AutopilotStatus {
	st := AutopilotStatus{Settings: cfg, Unstarted: []UnstartedMember{}}
	for _, m := range ms {
		if m.Started() {
			continue
		}
		u := UnstartedMember{ID: IDString(m.ID), PeerURLs: m.PeerURLs, AddedAt: m.AddedAt}
		if m.AddedAt > 0 {
			u.Waiting = now.Sub(time.Unix(m.AddedAt, 0)).Round(time.Second).String()
		}
		st.Unstarted = append(st.Unstarted, u)
	}
	return st
}
