import Foundation
import Testing
import ZiyuankuCore
import ZiyuankuLibrary
import ZiyuankuServer

/// Whatever prints the configuration or the services built on it (a failing service in the
/// service group's error, a log line, a debugger) never shows the platform secret or the
/// metrics token.
@Suite struct SecretPrintingTests {
    @Test func configurationAndServicesNeverPrintSecrets() throws {
        let secret = "platform-secret-不可外泄-\(Identifiers.uuidV7())"
        let metricsToken = "metrics-token-\(Identifiers.uuidV7())"
        let env = try TestEnv { c in
            c.platformAppSecret = secret
            c.metricsToken = metricsToken
        }
        for text in [
            String(describing: env.services.config), String(reflecting: env.services.config),
            String(describing: env.services), String(reflecting: env.services), String(describing: env.services.library),
        ] {
            #expect(!text.contains(secret) && !text.contains(metricsToken), "\(text.prefix(300))")
        }
        #expect(String(describing: env.services.config).contains(env.dir.path), "the description still says which data root it is")
    }
}
