import Foundation
import Tariff
import TariffSettlement
import TariffStripe

/// Stripe webhook deliveries: the input's first line is the `Stripe-Signature` header and the rest
/// the payload. Both are checked as they come (almost always refused), then the payload is signed
/// correctly and checked again, so the fuzzer reaches the event decoding. Never a trap.
let webhook = try? StripeWebhook(endpointSecret: "whsec_fuzz")
let now = Timestamp(nanosecondsSinceEpoch: 1_793_000_000_000_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebhook(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let webhook else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let newline = bytes.firstIndex(of: 0x0A) ?? size
    let header = String(decoding: bytes[0..<newline], as: UTF8.self)
    let payload = Data(bytes[min(newline + 1, size)...])
    _ = try? webhook.verify(payload: payload, signatureHeader: header, now: now)
    let signed = webhook.signatureHeader(payload: payload, timestamp: now.nanosecondsSinceEpoch / 1_000_000_000)
    if let event = try? webhook.verify(payload: payload, signatureHeader: signed, now: now) {
        _ = event.paymentIntent
    }
    return 0
}
