import Foundation
import GRDB
import ZiyuankuCore

/// The library report (docs/product.md#library-report): the figures a library is judged by.
public struct LibraryReport: JobReport {
    public struct Bucket: Sendable, Codable, Equatable {
        public var key: String
        public var name: String?
        public var count: Int
    }
    public var generatedAt: String
    /// The period for downloads and active teachers, [from, to) in UTC.
    public var from: String
    public var to: String
    /// Resources not deleted; `published` of them have a published version.
    public var resources = 0
    public var published = 0
    public var byType: [Bucket] = []
    public var byLevel: [Bucket] = []
    public var byOrganization: [Bucket] = []
    public var byMajor: [Bucket] = []
    public var byMajorClass: [Bucket] = []
    public var byMajorCategory: [Bucket] = []
    /// Resources whose type is not text-like (video, audio, animation, simulation, image…).
    public var nonText = 0
    public var nonTextShare = 0.0
    /// Resources created or changed in the 12 months before `to`, against all resources; the
    /// Ministry asks for at least 10% a year.
    public var updatedLast12Months = 0
    public var updatedShare = 0.0
    public var meetsYearlyUpdateRule = true
    /// Downloads in the period (whole China-time days that touch it; already deduplicated: a
    /// repeat by the same client within 30 s counted once) and teachers who created or changed a
    /// resource in the period.
    public var downloads = 0
    public var activeTeachers = 0
    /// Bytes stored (each distinct blob once) and what all versions' files add up to; the
    /// difference is what deduplication saves.
    public var storedBlobs = 0
    public var storedBytes: Int64 = 0
    public var referencedBytes: Int64 = 0
    public var savedByDeduplication: Int64 = 0
    /// The national-platform outbox (docs/product.md#sync-to-the-national-platform): entries by state, and when the last sync
    /// run ended (nil: never).
    public var platformSync = SyncCounts()
    public var lastSyncRunEndedAt: String?
    public var problemCount: Int { meetsYearlyUpdateRule ? 0 : 1 }
    public var counts: [String: Int64] {
        [
            "resources": Int64(resources), "published": Int64(published), "nonText": Int64(nonText), "updatedLast12Months": Int64(updatedLast12Months),
            "downloads": Int64(downloads), "activeTeachers": Int64(activeTeachers), "storedBytes": storedBytes,
            "savedByDeduplication": savedByDeduplication, "syncDone": Int64(platformSync.done), "syncDead": Int64(platformSync.dead),
            "syncWaiting": Int64(platformSync.waiting),
        ]
    }

    /// Types counted as text for the non-text share.
    public static let textTypes: Set<ResourceType> = [.text, .document, .paper, .question, .lecture, .case, .slides, .courseware]
    public static let yearlyUpdateRule = 0.10
}

extension Upkeep {
    /// The report over everything not deleted; downloads and active teachers over [from, to).
    public func report(from: Date, to: Date) throws -> LibraryReport {
        let fromText = Timestamp.format(from)
        let toText = Timestamp.format(to)
        var r = LibraryReport(generatedAt: Timestamp.now(), from: fromText, to: toText)
        try catalog.pool.read { db in
            func buckets(_ sql: String, _ args: StatementArguments = []) throws -> [LibraryReport.Bucket] {
                try Row.fetchAll(db, sql: sql, arguments: args).map { LibraryReport.Bucket(key: $0[0], name: $0[1], count: $0[2]) }
            }
            let live = "r.deleted_at IS NULL"
            r.resources = try Int.fetchOne(db, sql: "SELECT count(*) FROM resources r WHERE \(live)") ?? 0
            r.published = try Int.fetchOne(db, sql: "SELECT count(*) FROM resources r WHERE \(live) AND r.published_version IS NOT NULL") ?? 0
            r.byType = try buckets("SELECT r.resource_type, NULL, count(*) FROM resources r WHERE \(live) GROUP BY 1 ORDER BY 3 DESC, 1")
            r.byLevel = try buckets("SELECT r.education_level, NULL, count(*) FROM resources r WHERE \(live) GROUP BY 1 ORDER BY 3 DESC, 1")
            r.byOrganization = try buckets(
                """
                SELECT r.organization_id, o.name, count(*) FROM resources r JOIN organizations o ON o.id = r.organization_id
                WHERE \(live) GROUP BY 1 ORDER BY 3 DESC, 1
                """)
            r.byMajor = try buckets(
                """
                SELECT m.major_code, j.name, count(DISTINCT r.id) FROM resources r JOIN resource_majors m ON m.resource_id = r.id
                LEFT JOIN majors j ON j.code = m.major_code WHERE \(live) GROUP BY 1 ORDER BY 3 DESC, 1
                """)
            // A resource counts once per 类 and 大类, however many of its majors fall there.
            for (length, keyPath) in [(4, \LibraryReport.byMajorClass), (2, \LibraryReport.byMajorCategory)] {
                r[keyPath: keyPath] = try buckets(
                    """
                    SELECT substr(m.major_code, 1, ?), j.name, count(DISTINCT r.id) FROM resources r JOIN resource_majors m ON m.resource_id = r.id
                    LEFT JOIN majors j ON j.code = substr(m.major_code, 1, ?) WHERE \(live) GROUP BY 1 ORDER BY 3 DESC, 1
                    """, [length, length])
            }
            let text = LibraryReport.textTypes.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            r.nonText = try Int.fetchOne(db, sql: "SELECT count(*) FROM resources r WHERE \(live) AND r.resource_type NOT IN (\(text))") ?? 0
            let yearAgo = Timestamp.format(to.addingTimeInterval(-365 * 86_400))
            r.updatedLast12Months =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM resources r WHERE \(live) AND (r.updated_at >= ? OR r.created_at >= ?) AND r.created_at < ?",
                    arguments: [yearAgo, yearAgo, toText]) ?? 0
            r.downloads =
                try Int.fetchOne(
                    db, sql: "SELECT coalesce(sum(count), 0) FROM download_days WHERE day BETWEEN ? AND ?",
                    arguments: [DownloadCounter.day(from), DownloadCounter.day(to.addingTimeInterval(-0.001))]) ?? 0
            r.activeTeachers =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(DISTINCT a.actor_id) FROM audit_log a JOIN users u ON u.id = a.actor_id
                        WHERE a.action IN ('resource.create', 'resource.version', 'resource.restore') AND a.at >= ? AND a.at < ? AND u.role IN ('teacher', 'reviewer')
                        """, arguments: [fromText, toText]) ?? 0
            let stored = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(size), 0) FROM blobs")
            r.storedBlobs = stored?[0] ?? 0
            r.storedBytes = stored?[1] ?? 0
            r.referencedBytes = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM version_files") ?? 0
        }
        r.platformSync = try catalog.syncCounts()
        r.lastSyncRunEndedAt = try catalog.lastSyncRunEndedAt()
        r.savedByDeduplication = max(0, r.referencedBytes - r.storedBytes)
        r.nonTextShare = r.resources == 0 ? 0 : Double(r.nonText) / Double(r.resources)
        r.updatedShare = r.resources == 0 ? 0 : Double(r.updatedLast12Months) / Double(r.resources)
        r.meetsYearlyUpdateRule = r.resources == 0 || r.updatedShare >= LibraryReport.yearlyUpdateRule
        return r
    }
}
