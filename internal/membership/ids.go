package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ComputeMemberID derives a member ID from its peer URLs and the cluster
// token. At bootstrap every member computes the same IDs from
// --initial-cluster, so no coordination is needed; a runtime add also mixes
// in the time so that re-adding the same URL yields a fresh ID (a removed ID
// must never come back).
func ComputeMemberID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	if now != nil {
		b = append(b, strconv.FormatInt(now.Unix(), 10)...)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ComputeClusterID derives the cluster ID from the initial member IDs.
func ComputeClusterID(ids []uint64) uint64 {
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b := make([]byte, 8*len(sorted))
	for i, id := range sorted {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// IDString formats an ID the way etcdctl prints it.
func IDString(id uint64) string { return fmt.Sprintf("%016x", id) }

// ParseID parses a hex member or cluster ID.
func ParseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid member ID %q: expected up to 16 hex digits, as `member list` prints", s)
	}
	return id, nil
}
