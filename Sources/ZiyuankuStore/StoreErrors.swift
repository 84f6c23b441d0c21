import GRDB
import ZiyuankuCore

/// Translates storage-engine failures into problems a client can act on.
public enum StoreErrors {
    public static func map(_ error: any Error) -> DomainError? {
        guard let e = error as? DatabaseError else { return nil }
        switch e.resultCode {
        case .SQLITE_FULL:
            return DomainError(.insufficientStorage, "The server's storage is full; nothing was saved. Try again later.")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return DomainError(.unavailable, "The catalog is busy; retry in a moment.", retryAfterSeconds: 1)
        case .SQLITE_CONSTRAINT:
            return DomainError(.conflict, "The change conflicts with existing data (\(e.message ?? "constraint")).")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_IOERR:
            return DomainError(.unavailable, "The catalog cannot be written right now (\(e.resultCode)).", retryAfterSeconds: 5)
        default:
            return nil
        }
    }
}
