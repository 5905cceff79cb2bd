;; The page kernel in WebAssembly: LZ4 block decompression and CRC-64/ISO
;; (reflected polynomial 0xD800000000000000, slicing-by-8) over a whole batch
;; of pages per call. Built into src/ltx/page_kernel_wasm.ts by
;; `deno run -A compile/page_kernel_wasm.ts`; page_kernel.ts runs it.
;;
;; Memory: the CRC tables at [0, 16384) (8 x 256 i64), the last error at
;; 16384; batches from 16400 on, laid out by the caller.
(module
  (memory (export "memory") 1)

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
