import GRDB
import ZiyuankuCore

extension Row {
    /// A closed-vocabulary column read back: an unknown stored value is an error that names the
    /// column and the value, never silently read as some default (a role read as "reader", a
    /// status read as "draft" would change who may do what).
    func decode<E: RawRepresentable>(_ type: E.Type, _ column: String) throws -> E where E.RawValue == String {
        let raw: String? = self[column]
        guard let raw, let value = E(rawValue: raw) else {
            throw DomainError(
                .internal,
                "The catalog holds \(raw.map { "'\($0.prefix(40))'" } ?? "no value") in \(column), which is not a known \(E.self); "
                    + "was it written by a newer zyk? Nothing was changed.")
        }
        return value
    }
}
