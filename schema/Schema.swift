import Foundation
public enum ZiyuankuSchema { public static let bundle = Bundle.module }
