;; inference_minimum: an execution that makes at least `from_calls` inference calls is charged at
;; least `minimum` (a floor on runs that call a model, whatever the plan's model charged). It
;; reads no period state, so per-call plans may use it.
;;
;; Inputs (little-endian i64 at ptr, which is 0), per the call ABI:
;;   [0] charge so far (micro-units)   [7] inference_calls (millionths)
;;   [8] minimum (micro-units)         [9] from_calls
;; Returns the new charge in micro-units.
(module
  (memory (export "memory") 1 1)
  (func (export "tariff_rule_v1") (param $ptr i32) (param $count i32) (result i64)
    (local $charge i64)
    (local $minimum i64)
    ;; Called with another layout: answer out of range, so Tariff skips the rule and says so.
    (if (i32.ne (local.get $count) (i32.const 10))
      (then (return (i64.const -2))))
    (local.set $charge (i64.load (local.get $ptr)))
    ;; Whole calls (a reading is in millionths; dividing never overflows) below the threshold.
    (if (i64.lt_s (i64.div_s (i64.load offset=56 (local.get $ptr)) (i64.const 1000000))
                  (i64.load offset=72 (local.get $ptr)))
      (then (return (local.get $charge))))
    (local.set $minimum (i64.load offset=64 (local.get $ptr)))
    (if (result i64) (i64.lt_s (local.get $charge) (local.get $minimum))
      (then (local.get $minimum))
      (else (local.get $charge))))
)
