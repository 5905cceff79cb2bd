;; The page kernel in WebAssembly: LZ4 block decompression and CRC-64/ISO
;; (reflected polynomial 0xD800000000000000, slicing-by-8) over a whole batch
;; of pages per call. Built into src/ltx/page_kernel_wasm.ts by
;; `deno run -A compile/page_kernel_wasm.ts`; page_kernel.ts runs it.
;;
;; Memory: the CRC tables at [0, 16384) (8 x 256 i64), the last error at
;; 16384, the compressor's hash table at [16416, 32800) (4096 i32); buffers
;; from 32832 on, laid out by the caller.
(module
  (memory (export "memory") 1)
  ;; the compressor's hash table holds generation + position: entries from
  ;; older calls are below the current generation, so it is never cleared
  (global $gen (mut i32) (i32.const 1))

  ;; Builds the 8 CRC tables (once, before any other call).
  (func (export "init")
    (local $i i32) (local $b i32) (local $c i64) (local $t i32) (local $prev i64)
    (local.set $i (i32.const 0))
    (loop $entries
      (local.set $c (i64.extend_i32_u (local.get $i)))
      (local.set $b (i32.const 0))
      (loop $bits
        (if (i64.ne (i64.and (local.get $c) (i64.const 1)) (i64.const 0))
          (then (local.set $c (i64.xor (i64.shr_u (local.get $c) (i64.const 1))
                                       (i64.const 0xD800000000000000))))
          (else (local.set $c (i64.shr_u (local.get $c) (i64.const 1)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br_if $bits (i32.lt_u (local.get $b) (i32.const 8))))
      (i64.store (i32.shl (local.get $i) (i32.const 3)) (local.get $c))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $entries (i32.lt_u (local.get $i) (i32.const 256))))
    (local.set $t (i32.const 1))
    (loop $tables
      (local.set $i (i32.const 0))
      (loop $row
        (local.set $prev (i64.load (i32.shl
          (i32.add (i32.mul (i32.sub (local.get $t) (i32.const 1)) (i32.const 256)) (local.get $i))
          (i32.const 3))))
        (i64.store
          (i32.shl (i32.add (i32.mul (local.get $t) (i32.const 256)) (local.get $i)) (i32.const 3))
          (i64.xor (i64.shr_u (local.get $prev) (i64.const 8))
                   (i64.load (i32.shl (i32.wrap_i64 (i64.and (local.get $prev) (i64.const 0xff)))
                                      (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $row (i32.lt_u (local.get $i) (i32.const 256))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $tables (i32.lt_u (local.get $t) (i32.const 8)))))

  ;; Table t's entry for byte (x >> shift) & 0xff.
  (func $tab (param $t i32) (param $x i64) (param $shift i64) (result i64)
    (i64.load (i32.add (i32.shl (local.get $t) (i32.const 11))
                       (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (local.get $shift))
                                                       (i64.const 0xff)))
                                (i32.const 3)))))

  ;; CRC-64 of [p, p + len), from the empty CRC, finalized.
  (func $crc64 (export "crc64") (param $p i32) (param $len i32) (result i64)
    (local $c i64) (local $end i32) (local $end8 i32) (local $x i64)
    (local.set $c (i64.const -1))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (local.set $end8 (i32.sub (local.get $end) (i32.and (local.get $len) (i32.const 7))))
    (block $done8
      (loop $eight
        (br_if $done8 (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $x (i64.xor (local.get $c) (i64.load (local.get $p))))
        ;; table 7 for the lowest byte, table 0 for the highest (offset= picks the table)
        (local.set $c
          (i64.xor
            (i64.xor
              (i64.xor
                (i64.load offset=14336 (i32.shl (i32.and (i32.wrap_i64 (local.get $x)) (i32.const 0xff)) (i32.const 3)))
                (i64.load offset=12288 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 8))) (i32.const 0xff)) (i32.const 3))))
              (i64.xor
                (i64.load offset=10240 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 16))) (i32.const 0xff)) (i32.const 3)))
                (i64.load offset=8192 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 24))) (i32.const 0xff)) (i32.const 3)))))
            (i64.xor
              (i64.xor
                (i64.load offset=6144 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 32))) (i32.const 0xff)) (i32.const 3)))
                (i64.load offset=4096 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 40))) (i32.const 0xff)) (i32.const 3))))
              (i64.xor
                (i64.load offset=2048 (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 48))) (i32.const 0xff)) (i32.const 3)))
                (i64.load (i32.shl (i32.and (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 56))) (i32.const 0xff)) (i32.const 3)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $eight)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c
          (i64.xor (i64.shr_u (local.get $c) (i64.const 8))
                   (call $tab (i32.const 0)
                              (i64.xor (local.get $c) (i64.load8_u (local.get $p)))
                              (i64.const 0))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $bytes)))
    (i64.xor (local.get $c) (i64.const -1)))

  ;; The CRC-64 of [p, p + len) stored at out.
  (func (export "crc64To") (param $p i32) (param $len i32) (param $out i32)
    (i64.store (local.get $out) (call $crc64 (local.get $p) (local.get $len))))

  ;; Decompresses the LZ4 block [ip, end) to dst from op (matches reach back
  ;; to floor, never past dstEnd). Returns the bytes written, or a negative
  ;; code: -1 empty block, -2 truncated literal length, -3 literals past the
  ;; block, -4 literals past the output, -5 truncated match offset, -6
  ;; invalid match offset, -7 truncated match length, -8 match past the output.
  (func $lz4 (export "lz4")
    (param $ip i32) (param $end i32) (param $op i32) (param $dstEnd i32) (param $floor i32)
    (result i32)
    (local $start i32) (local $token i32) (local $n i32) (local $b i32) (local $off i32)
    (local $ref i32) (local $stop i32)
    (local.set $start (local.get $op))
    (if (i32.ge_u (local.get $ip) (local.get $end)) (then (return (i32.const -1))))
    (loop $seq
      (local.set $token (i32.load8_u (local.get $ip)))
      (local.set $ip (i32.add (local.get $ip) (i32.const 1)))
      ;; literals
      (local.set $n (i32.shr_u (local.get $token) (i32.const 4)))
      (if (i32.eq (local.get $n) (i32.const 15))
        (then
          (loop $more
            (if (i32.ge_u (local.get $ip) (local.get $end)) (then (return (i32.const -2))))
            (local.set $b (i32.load8_u (local.get $ip)))
            (local.set $ip (i32.add (local.get $ip) (i32.const 1)))
            (local.set $n (i32.add (local.get $n) (local.get $b)))
            (br_if $more (i32.eq (local.get $b) (i32.const 255))))))
      (if (i32.gt_u (local.get $n) (i32.const 0))
        (then
          (if (i32.gt_u (local.get $n) (i32.sub (local.get $end) (local.get $ip)))
            (then (return (i32.const -3))))
          (if (i32.gt_u (local.get $n) (i32.sub (local.get $dstEnd) (local.get $op)))
            (then (return (i32.const -4))))
          ;; short runs: two 8-byte moves (what they copy past the run is written again
          ;; later, and never past dstEnd), instead of a call to memory.copy
          (if (i32.and (i32.le_u (local.get $n) (i32.const 16))
                       (i32.ge_u (i32.sub (local.get $dstEnd) (local.get $op)) (i32.const 16)))
            (then
              (i64.store (local.get $op) (i64.load (local.get $ip)))
              (i64.store offset=8 (local.get $op) (i64.load offset=8 (local.get $ip))))
            (else (memory.copy (local.get $op) (local.get $ip) (local.get $n))))
          (local.set $ip (i32.add (local.get $ip) (local.get $n)))
          (local.set $op (i32.add (local.get $op) (local.get $n)))))
      (if (i32.eq (local.get $ip) (local.get $end))
        (then (return (i32.sub (local.get $op) (local.get $start)))))
      ;; match
      (if (i32.lt_u (i32.sub (local.get $end) (local.get $ip)) (i32.const 2))
        (then (return (i32.const -5))))
      (local.set $off (i32.load16_u (local.get $ip)))
      (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
      (if (i32.or (i32.eqz (local.get $off))
                  (i32.gt_u (local.get $off) (i32.sub (local.get $op) (local.get $floor))))
        (then (return (i32.const -6))))
      (local.set $n (i32.and (local.get $token) (i32.const 15)))
      (if (i32.eq (local.get $n) (i32.const 15))
        (then
          (loop $more
            (if (i32.ge_u (local.get $ip) (local.get $end)) (then (return (i32.const -7))))
            (local.set $b (i32.load8_u (local.get $ip)))
            (local.set $ip (i32.add (local.get $ip) (i32.const 1)))
            (local.set $n (i32.add (local.get $n) (local.get $b)))
            (br_if $more (i32.eq (local.get $b) (i32.const 255))))))
      (local.set $n (i32.add (local.get $n) (i32.const 4)))
      (if (i32.gt_u (local.get $n) (i32.sub (local.get $dstEnd) (local.get $op)))
        (then (return (i32.const -8))))
      (local.set $ref (i32.sub (local.get $op) (local.get $off)))
      (local.set $stop (i32.add (local.get $op) (local.get $n)))
      (if (i32.and (i32.ge_u (local.get $off) (i32.const 8))
                   (i32.and (i32.or (i32.le_u (local.get $n) (i32.const 32))
                                    (i32.lt_u (local.get $off) (local.get $n)))
                            (i32.ge_u (i32.sub (local.get $dstEnd) (local.get $stop)) (i32.const 8))))
        (then
          ;; 8 bytes at a time, each read from bytes already final (off >= 8); the
          ;; last move may pass stop by up to 7 bytes, written again later
          (loop $copy8
            (i64.store (local.get $op) (i64.load (local.get $ref)))
            (local.set $op (i32.add (local.get $op) (i32.const 8)))
            (local.set $ref (i32.add (local.get $ref) (i32.const 8)))
            (br_if $copy8 (i32.lt_u (local.get $op) (local.get $stop)))))
        (else
          (if (i32.ge_u (local.get $off) (local.get $n))
            (then (memory.copy (local.get $op) (local.get $ref) (local.get $n)))
            (else
              (block $copied
                (loop $copy1
                  (br_if $copied (i32.ge_u (local.get $op) (local.get $stop)))
                  (i32.store8 (local.get $op) (i32.load8_u (local.get $ref)))
                  (local.set $op (i32.add (local.get $op) (i32.const 1)))
                  (local.set $ref (i32.add (local.get $ref) (i32.const 1)))
                  (br $copy1)))))))
      (local.set $op (local.get $stop))
      (br $seq))
    (unreachable))

  ;; The 255-run bytes of a length whose 4-bit field is full; returns the new op.
  (func $lenTail (param $op i32) (param $rest i32) (result i32)
    (block $done
      (loop $runs
        (br_if $done (i32.lt_u (local.get $rest) (i32.const 255)))
        (i32.store8 (local.get $op) (i32.const 255))
        (local.set $op (i32.add (local.get $op) (i32.const 1)))
        (local.set $rest (i32.sub (local.get $rest) (i32.const 255)))
        (br $runs)))
    (i32.store8 (local.get $op) (local.get $rest))
    (i32.add (local.get $op) (i32.const 1)))

  ;; The hash table slot of the 4 bytes at p.
  (func $slot (param $p i32) (result i32)
    (i32.add (i32.const 16416)
             (i32.shl (i32.shr_u (i32.mul (i32.load (local.get $p)) (i32.const 2654435761))
                                 (i32.const 20))
                      (i32.const 2))))

  ;; Compresses [src, src + n) (n <= 65536) as one raw LZ4 block at dst (room
  ;; for n + n/255 + 16 bytes); returns its length. The same sequences as
  ;; lz4.ts's lz4CompressBlock, byte for byte.
  (func $compress (export "lz4Compress") (param $src i32) (param $n i32) (param $dst i32) (result i32)
    (local $base i32) (local $op i32) (local $anchor i32) (local $ip i32)
    (local $matchLimit i32) (local $searchLimit i32) (local $step i32) (local $attempts i32)
    (local $ref i32) (local $slot i32) (local $cand i32) (local $mlen i32) (local $lit i32)
    (local $tokenPos i32) (local $token i32) (local $x i64)
    (if (i32.gt_s (global.get $gen) (i32.sub (i32.const 0x7fff0000) (local.get $n)))
      (then
        (memory.fill (i32.const 16416) (i32.const 0) (i32.const 16384))
        (global.set $gen (i32.const 1))))
    (local.set $base (global.get $gen))
    (global.set $gen (i32.add (global.get $gen) (i32.add (local.get $n) (i32.const 1))))
    (local.set $op (local.get $dst))
    (local.set $matchLimit (i32.sub (local.get $n) (i32.const 5)))
    (local.set $searchLimit (i32.sub (local.get $n) (i32.const 12)))
    (if (i32.ge_s (local.get $n) (i32.const 13))
      (then
        (local.set $ip (i32.const 1))
        (i32.store (call $slot (local.get $src)) (local.get $base))
        (block $end
          (loop $main
            (br_if $end (i32.ge_s (local.get $ip) (local.get $searchLimit)))
            ;; find a match, skipping faster through incompressible data
            (local.set $step (i32.const 1))
            (local.set $attempts (i32.const 64))
            (local.set $ref (i32.const -1))
            (block $found
              (loop $search
                (br_if $found (i32.ge_s (local.get $ip) (local.get $searchLimit)))
                (local.set $slot (call $slot (i32.add (local.get $src) (local.get $ip))))
                (local.set $cand (i32.sub (i32.load (local.get $slot)) (local.get $base)))
                (i32.store (local.get $slot) (i32.add (local.get $base) (local.get $ip)))
                ;; (nested: an `if` evaluates all of its condition, and a stale
                ;; candidate must not be read)
                (if (i32.and (i32.ge_s (local.get $cand) (i32.const 0))
                             (i32.le_s (i32.sub (local.get $ip) (local.get $cand)) (i32.const 0xffff)))
                  (then
                    (if (i32.eq (i32.load (i32.add (local.get $src) (local.get $cand)))
                                (i32.load (i32.add (local.get $src) (local.get $ip))))
                      (then
                        (local.set $ref (local.get $cand))
                        (br $found)))))
                (local.set $ip (i32.add (local.get $ip) (local.get $step)))
                (local.set $step (i32.shr_u (local.get $attempts) (i32.const 6)))
                (local.set $attempts (i32.add (local.get $attempts) (i32.const 1)))
                (br $search)))
            (br_if $end (i32.lt_s (local.get $ref) (i32.const 0)))
            ;; extend backwards
            (block $back
              (loop $backward
                (br_if $back (i32.le_s (local.get $ip) (local.get $anchor)))
                (br_if $back (i32.le_s (local.get $ref) (i32.const 0)))
                (br_if $back (i32.ne
                  (i32.load8_u (i32.add (local.get $src) (i32.sub (local.get $ip) (i32.const 1))))
                  (i32.load8_u (i32.add (local.get $src) (i32.sub (local.get $ref) (i32.const 1))))))
                (local.set $ip (i32.sub (local.get $ip) (i32.const 1)))
                (local.set $ref (i32.sub (local.get $ref) (i32.const 1)))
                (br $backward)))
            ;; extend forwards, 8 bytes at a time, then byte by byte
            (local.set $mlen (i32.const 4))
            (block $fwd8
              (loop $forward8
                (br_if $fwd8 (i32.gt_s (i32.add (i32.add (local.get $ip) (local.get $mlen)) (i32.const 8))
                                       (local.get $matchLimit)))
                (local.set $x (i64.xor
                  (i64.load (i32.add (local.get $src) (i32.add (local.get $ip) (local.get $mlen))))
                  (i64.load (i32.add (local.get $src) (i32.add (local.get $ref) (local.get $mlen))))))
                (if (i64.ne (local.get $x) (i64.const 0))
                  (then
                    (local.set $mlen (i32.add (local.get $mlen)
                                              (i32.wrap_i64 (i64.shr_u (i64.ctz (local.get $x)) (i64.const 3)))))
                    (br $fwd8)))
                (local.set $mlen (i32.add (local.get $mlen) (i32.const 8)))
                (br $forward8)))
            (block $fwd
              (loop $forward
                (br_if $fwd (i32.ge_s (i32.add (local.get $ip) (local.get $mlen)) (local.get $matchLimit)))
                (br_if $fwd (i32.ne
                  (i32.load8_u (i32.add (local.get $src) (i32.add (local.get $ip) (local.get $mlen))))
                  (i32.load8_u (i32.add (local.get $src) (i32.add (local.get $ref) (local.get $mlen))))))
                (local.set $mlen (i32.add (local.get $mlen) (i32.const 1)))
                (br $forward)))
            ;; the sequence: token, literals, offset, match length
            (local.set $lit (i32.sub (local.get $ip) (local.get $anchor)))
            (local.set $tokenPos (local.get $op))
            (local.set $op (i32.add (local.get $op) (i32.const 1)))
            (if (i32.ge_u (local.get $lit) (i32.const 15))
              (then
                (local.set $token (i32.const 0xf0))
                (local.set $op (call $lenTail (local.get $op) (i32.sub (local.get $lit) (i32.const 15)))))
              (else (local.set $token (i32.shl (local.get $lit) (i32.const 4)))))
            (memory.copy (local.get $op) (i32.add (local.get $src) (local.get $anchor)) (local.get $lit))
            (local.set $op (i32.add (local.get $op) (local.get $lit)))
            (i32.store16 (local.get $op) (i32.sub (local.get $ip) (local.get $ref)))
            (local.set $op (i32.add (local.get $op) (i32.const 2)))
            (local.set $mlen (i32.sub (local.get $mlen) (i32.const 4)))
            (if (i32.ge_u (local.get $mlen) (i32.const 15))
              (then
                (local.set $token (i32.or (local.get $token) (i32.const 15)))
                (local.set $op (call $lenTail (local.get $op) (i32.sub (local.get $mlen) (i32.const 15)))))
              (else (local.set $token (i32.or (local.get $token) (local.get $mlen)))))
            (i32.store8 (local.get $tokenPos) (local.get $token))
            (local.set $ip (i32.add (local.get $ip) (i32.add (local.get $mlen) (i32.const 4))))
            (local.set $anchor (local.get $ip))
            (if (i32.lt_s (local.get $ip) (local.get $searchLimit))
              (then
                ;; the position just before the next search goes into the table
                (i32.store (call $slot (i32.add (local.get $src) (i32.sub (local.get $ip) (i32.const 2))))
                           (i32.add (local.get $base) (i32.sub (local.get $ip) (i32.const 2))))))
            (br $main)))))
    ;; the last literals
    (local.set $lit (i32.sub (local.get $n) (local.get $anchor)))
    (if (i32.ge_u (local.get $lit) (i32.const 15))
      (then
        (i32.store8 (local.get $op) (i32.const 0xf0))
        (local.set $op (call $lenTail (i32.add (local.get $op) (i32.const 1))
                                      (i32.sub (local.get $lit) (i32.const 15)))))
      (else
        (i32.store8 (local.get $op) (i32.shl (local.get $lit) (i32.const 4)))
        (local.set $op (i32.add (local.get $op) (i32.const 1)))))
    (memory.copy (local.get $op) (i32.add (local.get $src) (local.get $anchor)) (local.get $lit))
    (i32.sub (i32.add (local.get $op) (local.get $lit)) (local.get $dst)))

  ;; Encodes n pages of pageSize bytes at src: page k's LZ4 block goes to
  ;; out + k * bound, its length to lens[k], its CRC-64 to crc[k].
  (func (export "encodeBatch")
    (param $n i32) (param $src i32) (param $out i32) (param $ps i32) (param $bound i32)
    (param $lens i32) (param $crc i32)
    (local $k i32) (local $page i32)
    (block $done
      (loop $pages
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $page (i32.add (local.get $src) (i32.mul (local.get $k) (local.get $ps))))
        (i32.store (i32.add (local.get $lens) (i32.shl (local.get $k) (i32.const 2)))
                   (call $compress (local.get $page) (local.get $ps)
                                   (i32.add (local.get $out) (i32.mul (local.get $k) (local.get $bound)))))
        (i64.store (i32.add (local.get $crc) (i32.shl (local.get $k) (i32.const 3)))
                   (call $crc64 (local.get $page) (local.get $ps)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $pages))))

  ;; Decodes n pages: block k is [src + at[k], + len[k]) and goes to
  ;; out + k * pageSize; its CRC-64 to crc[k]. Returns -1 when every page
  ;; decoded to exactly pageSize bytes, else the first k that did not (its
  ;; lz4 result stored at 16384).
  (func (export "decodeBatch")
    (param $n i32) (param $at i32) (param $len i32) (param $src i32) (param $out i32)
    (param $ps i32) (param $crc i32)
    (result i32)
    (local $k i32) (local $dst i32) (local $a i32) (local $got i32)
    (block $done
      (loop $pages
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $k) (local.get $ps))))
        (local.set $a (i32.add (local.get $src)
                               (i32.load (i32.add (local.get $at) (i32.shl (local.get $k) (i32.const 2))))))
        (local.set $got
          (call $lz4
            (local.get $a)
            (i32.add (local.get $a)
                     (i32.load (i32.add (local.get $len) (i32.shl (local.get $k) (i32.const 2)))))
            (local.get $dst)
            (i32.add (local.get $dst) (local.get $ps))
            (local.get $dst)))
        (if (i32.ne (local.get $got) (local.get $ps))
          (then
            (i32.store (i32.const 16384) (local.get $got))
            (return (local.get $k))))
        (i64.store (i32.add (local.get $crc) (i32.shl (local.get $k) (i32.const 3)))
                   (call $crc64 (local.get $dst) (local.get $ps)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $pages)))
    (i32.const -1)))
