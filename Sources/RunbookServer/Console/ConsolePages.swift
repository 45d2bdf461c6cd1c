import Foundation

/// The console's HTML: one small shell per page (the page script fills it from the API), and the
/// sign-in form. No inline script or style: the Content-Security-Policy forbids both.
enum ConsolePages {
    static func shell(page: String, title: String, runID: String? = nil) -> String {
        let run = runID.map { " data-run=\"\(StepGraphSVG.xml($0))\"" } ?? ""
        return """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(StepGraphSVG.xml(title)) · runbook</title>
        <link rel="stylesheet" href="/ui/assets/app.css">
        <script src="/ui/assets/common.js" defer></script>
        <script src="/ui/assets/\(page).js" defer></script>
        </head>
        <body data-page="\(page)"\(run)>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/ui/">runbook</a>
          <nav aria-label="Sections">
            <a href="/ui/"\(page == "runs" ? " aria-current=\"page\"" : "")>Runs</a>
            <a href="/ui/runbooks"\(page == "runbooks" ? " aria-current=\"page\"" : "")>Runbooks</a>
          </nav>
          <span id="who" class="who"></span>
          <form method="post" action="/ui/logout" id="logout"><button type="submit">Sign out</button></form>
        </header>
        <main id="main" tabindex="-1">
        <p class="loading" id="loading">Loading…</p>
        </main>
        </body>
        </html>
        """
    }

    /// A page that is not there: what was asked for, and the way back.
    static func notFound(_ message: String) -> String {
        plainPage(title: "Not found", page: "not-found", main: """
        <main id="main">
        <h1>Not found</h1>
        \(errorNote(message))
        <p><a href="/ui/">All runs</a> · <a href="/ui/runbooks">Runbooks</a></p>
        </main>
        """)
    }

    /// A page with no script: the stylesheet and `main`.
    static func plainPage(title: String, page: String, main: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(StepGraphSVG.xml(title)) · runbook</title>
        <link rel="stylesheet" href="/ui/assets/app.css">
        </head>
        <body data-page="\(page)">
        \(main)
        </body>
        </html>
        """
    }

    /// An error told by words and an icon, its text escaped.
    static func errorNote(_ message: String) -> String {
        "<p class=\"error\" role=\"alert\"><span aria-hidden=\"true\">✗ </span>\(StepGraphSVG.xml(message))</p>"
    }

    static func login(message: String?) -> String {
        plainPage(title: "Sign in", page: "login", main: """
        <main id="main" class="login">
        <h1>runbook</h1>
        <p>Sign in with a token from the server's token file (a reader sees runs; an operator also approves, denies, cancels and starts them).</p>
        \(message.map(errorNote) ?? "")
        <form method="post" action="/ui/login">
          <label for="token">Token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
          <button type="submit">Sign in</button>
        </form>
        </main>
        """)
    }
}
