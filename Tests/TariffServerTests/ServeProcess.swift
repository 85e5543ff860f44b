import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `tariff serve` as a separate process (the kill tests and the PostgreSQL tests).
final class ServeProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let outputFile: String
    let errorFile: String

    /// Starts `tariff serve ARGUMENTS --listen 127.0.0.1:PORT` and waits for its "listening on" line.
    static func start(_ arguments: [String], port: Int = 0, directory: String, environment: [String: String]? = nil) async throws -> ServeProcess {
        let outputFile = directory + "/serve-\(UUID().uuidString).out", errorFile = directory + "/serve-\(UUID().uuidString).err"
        FileManager.default.createFile(atPath: outputFile, contents: nil)
        FileManager.default.createFile(atPath: errorFile, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tariffExecutable)
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorFile))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
               let found = line.split(separator: ":").last.flatMap({ Int($0) }) {
                return ServeProcess(process: process, port: found, outputFile: outputFile, errorFile: errorFile)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let error = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        process.terminate()
        throw ServeProcessFailed(description: "tariff serve did not start: \(error.suffix(400))")
    }

    private init(process: Process, port: Int, outputFile: String, errorFile: String) {
        self.process = process
        self.port = port
        self.outputFile = outputFile
        self.errorFile = errorFile
    }

    var base: String { "http://127.0.0.1:\(port)" }
    var errorLog: String { (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to end (polling: no thread of the test pool is blocked).
    func wait(seconds: Int = 60) async -> (status: Int32, reason: Process.TerminationReason)? {
        for _ in 0..<(seconds * 50) {
            if !process.isRunning { return (process.terminationStatus, process.terminationReason) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// SIGTERM (SIGKILL after 40 s), then checks that no secret a test handed out reached its log.
    func stop() async {
        if process.isRunning { signal(SIGTERM) }
        if await wait(seconds: 40) == nil { signal(SIGKILL) }
        let log = errorLog + ((try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? "")
        for secret in TestServer.secrets.withLock({ $0 }) { #expect(!log.contains(secret), "a secret reached the log of tariff serve") }
        #expect(!log.lowercased().contains("bearer "), "an Authorization value reached the log of tariff serve")
    }
}

struct ServeProcessFailed: Error, CustomStringConvertible { var description: String }

/// Sends a request again and again (a lost connection, a server restarting, a 503) until it gets
/// an answer that is not a transient failure: a client retrying under the same keys.
func sendRetrying(_ method: String, _ url: String, key: String, json: String?, headers: [String: String] = [:], seconds: Int = 60) async throws -> Answer {
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds) * 1_000_000_000
    while true {
        do {
            let answer = try await HTTP.send(method, url, key: key, body: json.map { Data($0.utf8) }, headers: headers)
            if answer.status != 503 { return answer }
        } catch {
            if DispatchTime.now().uptimeNanoseconds > deadline { throw error }
        }
        try await Task.sleep(for: .milliseconds(30))
    }
}
