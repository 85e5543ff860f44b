;; loyalty_discount: `percent` off an execution's charge once the consumer has run
;; `after_executions` executions in the period, for executions that make at least one inference
;; call. The discount is rounded down to the micro-unit (the charge up).
;;
;; Inputs (little-endian i64 at ptr, which is 0), per the call ABI:
;;   [0] charge so far (micro-units)   [5] executions in the period before this one
;;   [7] inference_calls (millionths)  [8] percent (millionths)  [9] after_executions
;; Returns the new charge in micro-units.
(module
  (memory (export "memory") 1 1)
  (func (export "tariff_rule_v1") (param $ptr i32) (param $count i32) (result i64)
    (local $charge i64)
    (local $percent i64)
    ;; Called with another layout: answer out of range, so Tariff skips the rule and says so.
    (if (i32.ne (local.get $count) (i32.const 10))
      (then (return (i64.const -2))))
    (local.set $charge (i64.load (local.get $ptr)))
    ;; Not yet loyal this period, or no inference call: the charge stays.
    (if (i64.lt_s (i64.load offset=40 (local.get $ptr)) (i64.load offset=72 (local.get $ptr)))
      (then (return (local.get $charge))))
    (if (i64.lt_s (i64.load offset=56 (local.get $ptr)) (i64.const 1000000))
      (then (return (local.get $charge))))
    (local.set $percent (i64.load offset=64 (local.get $ptr)))
    ;; charge - floor(charge * percent / 10^6), without overflowing 64 bits.
    (i64.sub
      (local.get $charge)
      (i64.add
        (i64.mul (i64.div_u (local.get $charge) (i64.const 1000000)) (local.get $percent))
        (i64.div_u (i64.mul (i64.rem_u (local.get $charge) (i64.const 1000000)) (local.get $percent))
                   (i64.const 1000000)))))
)
