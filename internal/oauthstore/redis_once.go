package oauthstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Once-only calls. go-redis sends a command again when its answer does not
// come within the read timeout (MaxRetries, 3 by default), and a Redis that
// was only slow (a long fork, a paused VM, a congested network) runs every
// copy it received, the abandoned ones included, in whatever order they
// reach it. For SET NX and GETDEL that is wrong twice over: a copy run
// second finds what the first one did, so a free claim is reported as
// taken (the gateway takes its own refresh for theft and revokes the
// family) and a live code as not found (and nobody gets it). Turning the
// retries off is not enough: the call then fails while its first copy may
// still run later, claiming or taking for nobody, so that the client's
// retry of the grant finds its own token "reused" or its code gone.
//
// So PutIfAbsent and Take each run one Lua script, any copy of which may
// run any number of times, before, after or instead of the others:
//
//   - Each call has a random token. The first copy Redis runs decides the
//     outcome (stored or present; the value or nothing) and writes it down
//     under a marker of the call's own beside the key (onceKey). A later
//     copy finds the marker and answers what it says, changing nothing.
//     So a call claims or takes at most once, and whichever copy's answer
//     it reads tells it what its first copy did.
//   - Each call has a deadline (onceTimeout, or the caller's if sooner),
//     sent in Redis's clock as a fence: a copy that finds no marker at or
//     after the fence changes nothing and answers "late". Until an answer
//     comes the call sends copies (go-redis's retries, then its own), and
//     it gives up only at its deadline, which in Redis's clock is no
//     earlier than the fence; so nothing it sent claims or takes anything
//     after it has returned. (A refused connection ends it at once: no
//     Redis runs there, and the process that may have received a copy is
//     gone with whatever it had not run.)
//   - A marker lives until the fence and onceSlack more: no copy acts
//     after the fence, so none needs it later.
//
// An error therefore means that Redis may or may not have done it (a copy
// may have run whose answer was lost), but that whatever it did is done:
// nothing the call sent takes effect after it returns. For that, the
// caller's cancellation does not cut a started call short; its deadline
// does. The price: while Redis is unreachable but not refusing (stalled,
// partitioned, refusing writes), a once-only call fails after its whole
// deadline rather than at go-redis's first give-up.
//
// Redis's clock is read with TIME, and again with every script's answer:
// Redis's "now" is taken to be the last reading plus the time elapsed here
// (Go's monotonic clock) since that answer arrived. The answer left Redis
// before it arrived, so the estimate is never ahead of Redis's clock and
// the fence never later than the call's end, however far apart the
// gateway's and Redis's clocks are (a Redis clock stepped backwards aside,
// which the next reading, at most redisClockMaxAge later, repairs; in a
// Redis Cluster the reading may come from another node, so it holds up to
// the nodes' clock difference).

const (
	// redisOnceTimeout is how long a once-only call may take, retries
	// included, unless its context ends sooner: long enough for go-redis's
	// default read timeout (3 s) and a retry or two.
	redisOnceTimeout = 10 * time.Second
	// onceSlack is how long a marker outlives its call's fence.
	onceSlack = time.Second
	// onceRetryPause is the pause between two tries of a once-only call
	// (go-redis waits between its own retries within each).
	onceRetryPause = 50 * time.Millisecond
	// redisClockMaxAge is how old a reading of Redis's clock may be before
	// a once-only call reads it again (TIME) instead of trusting it.
	redisClockMaxAge = time.Minute
)

// errRedisLate reports a once-only call whose answer came from a copy Redis
// ran after the call's fence (so that copy changed nothing).
var errRedisLate = errors.New("redis ran the call after its deadline")

// putIfAbsentScript is SET NX, once per call. KEYS: the key, the call's
// marker. ARGV: the value, its lifetime in ms (0: none), the fence and the
// marker's slack in ms. Answers {outcome, Redis's now in ms}; the outcome
// is 1 stored, 0 present, -1 late.
var putIfAbsentScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local done = redis.call('GET', KEYS[2])
if done then return {tonumber(done), now} end
local fence = tonumber(ARGV[3])
if now >= fence then return {-1, now} end
local stored
if ARGV[2] == '0' then
	stored = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
	stored = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end
local outcome = 0
if stored then outcome = 1 end
redis.call('SET', KEYS[2], outcome, 'PX', fence - now + tonumber(ARGV[4]))
return {outcome, now}
`)

// takeScript is GETDEL, once per call. KEYS: the key, the call's marker.
// ARGV: the fence and the marker's slack in ms. Answers {outcome, Redis's
// now in ms, value}; the outcome is 1 taken (with the value), 0 absent, -1
// late. The marker holds "0", or "1" and the value taken.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local done = redis.call('GET', KEYS[2])
if done then
	if done == '0' then return {0, now} end
	return {1, now, string.sub(done, 2)}
end
local fence = tonumber(ARGV[1])
if now >= fence then return {-1, now} end
local ttl = fence - now + tonumber(ARGV[2])
local v = redis.call('GETDEL', KEYS[1])
if not v then
	redis.call('SET', KEYS[2], '0', 'PX', ttl)
	return {0, now}
end
redis.call('SET', KEYS[2], '1' .. v, 'PX', ttl)
return {1, now, v}
`)

// once runs a once-only script on key, with the call's marker as the
// second key and the fence and slack after args, and returns its outcome
// (1 or 0) and value.
func (s *RedisStore) once(ctx context.Context, script *redis.Script, key string, args ...any) (int64, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err // nothing sent
	}
	deadline := time.Now().Add(cmp.Or(s.onceTimeout, redisOnceTimeout))
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	clock, err := s.readClock(ctx)
	if err != nil {
		return 0, "", err
	}
	token, err := NewID()
	if err != nil {
		return 0, "", err
	}
	fence := clock.ms + deadline.Sub(clock.at).Milliseconds()
	k := s.key(key)
	keys := []string{k, onceKey(k, token)}
	args = append(args, fence, onceSlack.Milliseconds())
	var res []any
	for {
		res, err = script.Run(ctx, s.client, keys, args...).Slice()
		if err == nil {
			break
		}
		// go-redis has given up, but a copy it sent may still be on its
		// way: send another until one answers or the deadline passes.
		// Only a refused connection ends the call early: nothing listens
		// where Redis was, so the process that may have received a copy
		// is gone, and with it any copy it has not run.
		if errors.Is(err, syscall.ECONNREFUSED) || !time.Now().Before(deadline) {
			return 0, "", err
		}
		select {
		case <-ctx.Done():
		case <-time.After(onceRetryPause):
		}
	}
	outcome, now, value, ok := parseOnceAnswer(res)
	if !ok {
		return 0, "", fmt.Errorf("unexpected answer from redis: %v", res)
	}
	s.clock.Store(&redisClock{ms: now, at: time.Now()})
	if outcome < 0 {
		return 0, "", errRedisLate
	}
	return outcome, value, nil
}

// parseOnceAnswer reads a once-only script's {outcome, now[, value]}.
func parseOnceAnswer(res []any) (outcome, now int64, value string, ok bool) {
	if len(res) < 2 {
		return 0, 0, "", false
	}
	outcome, ok1 := res[0].(int64)
	now, ok2 := res[1].(int64)
	if !ok1 || !ok2 || outcome < -1 || outcome > 1 {
		return 0, 0, "", false
	}
	if outcome == 1 && len(res) > 2 {
		if value, ok = res[2].(string); !ok {
			return 0, 0, "", false
		}
	}
	return outcome, now, value, true
}

// redisClock is a reading of Redis's clock: ms is its time in ms, which
// arrived here at at (carrying Go's monotonic reading).
type redisClock struct {
	ms int64
	at time.Time
}

// readClock returns the latest reading of Redis's clock, or a new one
// (TIME) when that is missing or older than redisClockMaxAge.
func (s *RedisStore) readClock(ctx context.Context) (*redisClock, error) {
	if c := s.clock.Load(); c != nil && time.Since(c.at) < redisClockMaxAge {
		return c, nil
	}
	t, err := s.client.Time(ctx).Result()
	if err != nil {
		return nil, err
	}
	c := &redisClock{ms: t.UnixMilli(), at: time.Now()}
	s.clock.Store(c)
	return c, nil
}

// onceKey is where a once-only call with token leaves its marker for the
// Redis key k. It is in k's hash slot, as Redis Cluster runs a script only
// on keys of one slot (a key's slot is that of its first non-empty {tag},
// or of the whole key without one); only a key prefix holding a lone '}'
// keeps them apart, which a single Redis does not mind. And it is no Store
// key (one holds neither '{' nor ':'), so List leaves it out.
func onceKey(k, token string) string {
	if hashTagged(k) || strings.Contains(k, "}") {
		return k + ":once:" + token
	}
	return "{" + k + "}:once:" + token
}

// hashTagged reports whether k has a Redis Cluster hash tag: a '{' followed
// later by a '}' with something in between.
func hashTagged(k string) bool {
	open := strings.IndexByte(k, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(k[open+1:], '}')
	return end > 0
}
