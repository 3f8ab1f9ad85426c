/**
 * The Lua script that appends events. It is the only writer of sequence numbers.
 *
 * One call appends a batch of one turn's events atomically:
 * - fence: with a lease token, the call fails with `FENCED` unless the session lease still holds
 *   that token, so a worker that lost its turn can never append after the new owner;
 * - idempotency: an event whose step key is already in the turn's step hash is not appended
 *   again; its original seq is returned instead, negated (so the caller can tell);
 * - seq: INCR of the session counter, strictly +1 per appended event; if the counter is missing
 *   the call fails with `SEQ_UNINITIALISED` and the caller rebuilds it from the store first —
 *   unless the caller says the session is brand new (no events anywhere), then it starts at 0;
 * - delivery: each event goes to the session's hot stream (entry id `<seq>-0`); the batch goes
 *   to the persist stream and to the session's live channel as newline-joined envelopes.
 *
 * KEYS: 1 seq counter, 2 session stream, 3 turn step hash, 4 session lease, 5 persist stream,
 *       6 live channel
 * ARGV: 1 fence token or "", 2 hot stream max length, 3 seq TTL ms, 4 step hash TTL ms,
 *       5 hot stream TTL ms, 6 "new" for a brand-new session else "", 7 event count N,
 *       then N × (step, envelope tail).
 *       The envelope is `{"v":1,"seq":<seq>` + tail, so JSON is built once, by the caller.
 * Returns: array of N seqs: positive when appended now, negative (−seq) when it already was;
 *          then one more element, the session stream's length after the call (a metric).
 */
export const APPEND_EVENTS_LUA = `
local fence = ARGV[1]
if fence ~= '' and redis.call('GET', KEYS[4]) ~= fence then
  return redis.error_reply('FENCED')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[6] ~= 'new' then return redis.error_reply('SEQ_UNINITIALISED') end
  redis.call('SET', KEYS[1], 0)
end
local n = tonumber(ARGV[7])
local seqs = {}
local lines = {}
local last = nil
for i = 0, n - 1 do
  local step = ARGV[8 + 2 * i]
  local existing = redis.call('HGET', KEYS[3], step)
  if existing then
    seqs[#seqs + 1] = -tonumber(existing)
  else
    local seq = redis.call('INCR', KEYS[1])
    local envelope = '{"v":1,"seq":' .. seq .. ARGV[9 + 2 * i]
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', envelope)
    redis.call('HSET', KEYS[3], step, seq)
    lines[#lines + 1] = envelope
    seqs[#seqs + 1] = seq
    last = seq
  end
end
if last then
  local payload = table.concat(lines, '\\n')
  redis.call('XADD', KEYS[5], '*', 'e', payload)
  redis.call('PUBLISH', KEYS[6], payload)
  redis.call('HSET', KEYS[3], '_last', last)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
seqs[#seqs + 1] = redis.call('XLEN', KEYS[2])
return seqs
`;
