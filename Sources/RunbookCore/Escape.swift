/// Outside text (alert labels, params, command output) made safe to show: control characters are
/// written as visible escapes, never sent raw to a terminal or a Markdown file.
public enum Escape {
    /// C0 controls, DEL, C1 controls and the Unicode line and paragraph separators (SPEC §6.5).
    public static func isControl(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v <= 0x1F || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
    }

    /// Bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069):
    /// shown raw, a right-to-left override makes `gpj.exe` read as `exe.jpg` (Trojan Source).
    public static func isBidiControl(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v == 0x061C || v == 0x200E || v == 0x200F || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// What `text` escapes: control characters and bidirectional formatting characters.
    static func isUnsafeToShow(_ u: Unicode.Scalar) -> Bool { isControl(u) || isBidiControl(u) }

    /// The first control character in `s`, if any.
    public static func firstControl(in s: String) -> Unicode.Scalar? { s.unicodeScalars.first(where: isControl) }

    /// `U+000A` style name of a scalar.
    public static func name(_ u: Unicode.Scalar) -> String {
        let hex = String(u.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// Every control character written as `\n`, `\t`, `\r` or `\u{1B}`, and every bidirectional
    /// formatting character as `\u{202E}`; `keepNewlines` leaves `\n` (and tabs) for multi-line text
    /// such as command output in a code block.
    public static func text(_ s: String, keepNewlines: Bool = false) -> String {
        guard s.unicodeScalars.contains(where: isUnsafeToShow) else { return s }
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            guard isUnsafeToShow(u) else { out.append(u); continue }
            if keepNewlines, u == "\n" || u == "\t" { out.append(u); continue }
            let visible: String
            switch u {
            case "\n": visible = "\\n"
            case "\r": visible = "\\r"
            case "\t": visible = "\\t"
            default: visible = "\\u{\(String(u.value, radix: 16, uppercase: true))}"
            }
            out.append(contentsOf: visible.unicodeScalars)
        }
        return String(out)
    }
}
