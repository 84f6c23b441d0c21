import GRDB
import ZiyuankuCore

/// Translates storage-engine failures into problems a client can act on.
public enum StoreErrors {
    public static func map(_ error: any Error) -> AppError? {
        guard let e = error as? DatabaseError else { return nil }
        switch e.resultCode {
        case .SQLITE_FULL:
            return AppError(.insufficientStorage, "The server's storage is full; nothing was saved. Try again later.")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return AppError(.unavailable, "The catalog is busy; retry in a moment.", headers: [("Retry-After", "1")])
        case .SQLITE_CONSTRAINT:
            return AppError(.conflict, "The change conflicts with existing data (\(e.message ?? "constraint")).")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_IOERR:
            return AppError(.unavailable, "The catalog cannot be written right now (\(e.resultCode)).", headers: [("Retry-After", "5")])
        default:
            return nil
        }
    }
}
