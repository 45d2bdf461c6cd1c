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

    static func login(message: String?) -> String {
        let note = message.map { "<p class=\"error\" role=\"alert\"><span aria-hidden=\"true\">✗ </span>\(StepGraphSVG.xml($0))</p>" } ?? ""
        return """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sign in · runbook</title>
        <link rel="stylesheet" href="/ui/assets/app.css">
        </head>
        <body data-page="login">
        <main id="main" class="login">
        <h1>runbook</h1>
        <p>Sign in with a token from the server's token file (a reader sees runs; an operator also approves, denies, cancels and starts them).</p>
        \(note)
        <form method="post" action="/ui/login">
          <label for="token">Token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
          <button type="submit">Sign in</button>
        </form>
        </main>
        </body>
        </html>
        """
    }
}
