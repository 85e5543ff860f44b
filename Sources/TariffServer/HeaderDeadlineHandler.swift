import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request head does not arrive within `seconds` of its first byte (or
/// of the connection's opening): a client that sends its headers a byte a second (slowloris)
/// holds a connection for at most that long, whatever the idle timeout.
///
/// It sits after the HTTP decoder (where Hummingbird adds handlers) and puts a small watcher of
/// raw bytes at the front of the pipeline, so the clock starts at a request's first byte, not at
/// its decoded head.
final class HeaderDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum State { case awaitingHead, inRequest, idle }

    let timeout: TimeAmount
    /// Idle until the first byte (a connection that sends nothing is closed by the idle timeout).
    private var state = State.idle
    private var deadline: Scheduled<Void>?

    init(seconds: Int64) { timeout = .seconds(seconds) }

    func handlerAdded(context: ChannelHandlerContext) {
        let watcher = FirstByteWatcher(owner: self)
        try? context.pipeline.syncOperations.addHandler(watcher, position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    /// A byte arrived on the wire: a new request begins if none was under way.
    func bytesArrived(_ context: ChannelHandlerContext) {
        if state == .idle { arm(context) }
    }

    private func arm(_ context: ChannelHandlerContext) {
        state = .awaitingHead
        deadline?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, self.state == .awaitingHead else { return }
            loopBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            state = .inRequest
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), state == .inRequest { state = .idle }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }
}

/// Tells `HeaderDeadlineHandler` when bytes arrive (before any decoding).
final class FirstByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private weak var owner: HeaderDeadlineHandler?
    private var ownerContext: ChannelHandlerContext?

    init(owner: HeaderDeadlineHandler) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let owner {
            if ownerContext == nil { ownerContext = try? context.pipeline.syncOperations.context(handler: owner) }
            if let ownerContext { owner.bytesArrived(ownerContext) }
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) { ownerContext = nil }
}
