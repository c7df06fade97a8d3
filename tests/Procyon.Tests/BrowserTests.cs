using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>Headless Chromium (tests/browser: playwright-core with Debian's Chromium) against the real server.</summary>
public sealed class BrowserTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task Try_it_out_in_Swagger_UI_calls_add_and_shows_the_result()
    {
        var lines = await RunAsync("swagger.mjs", "swagger-try-it-out.png", "add");

        Assert.Contains("status: 200", lines);
        Assert.Contains("result: 2", lines);
    }

    [Fact]
    public async Task Swagger_UIs_Authorize_button_makes_its_calls_as_the_tokens_identity()
    {
        var (identity, token) = await Server.NewIdentityAsync();

        var lines = await RunAsync("swagger.mjs", "swagger-authorize.png", "who_am_i", token);

        Assert.Contains("status: 200", lines);
        Assert.Contains($"result: \"{identity}\"", lines);
    }

    [Fact]
    public async Task Swagger_UIs_Authorize_button_publishes_a_module_that_the_tokens_identity_owns()
    {
        var (_, token) = await Server.NewIdentityAsync();

        var lines = await RunAsync("swagger.mjs", "swagger-publish.png", "publish", token, "from_swagger", Modules.PathOf("example"));

        Assert.Contains("status: 201", lines);
        Assert.Contains(lines, line => line.StartsWith("result: { \"db\": \"from_swagger\"", StringComparison.Ordinal));
        // The owner's logs answer that token, so the publish was made as its identity.
        Assert.NotNull(await Server.LogsAsync("from_swagger", token));
    }

    [Fact]
    public async Task The_console_page_calls_add_and_shows_the_result_in_the_live_feed()
    {
        var lines = await RunAsync("console.mjs", "console-call-add.png");

        Assert.Contains("response: 200 5", lines);
        Assert.Contains(lines, line => line.StartsWith("feed: example.add [http] ok: 5", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_console_dashboard_calls_through_a_generated_form_and_shows_the_scheduler_logs_and_charts()
    {
        var lines = await RunAsync("dashboard.mjs", "console-dashboard.png", await Server.OwnerTokenAsync());

        Assert.Contains("form response: 200 5", lines);
        Assert.Contains(lines, line => line.StartsWith("scheduled: 1 pending, next due ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("run: #", StringComparison.Ordinal) && line.Contains(" ok at ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.StartsWith("log: ", StringComparison.Ordinal) && line.Contains("INFO reminder: dashboard ", StringComparison.Ordinal));
        Assert.Contains("charts: 3", lines);
    }

    /// <summary>Runs a script against this class's server; returns its output lines. The screenshot is a test artifact.</summary>
    private async Task<string[]> RunAsync(string script, string screenshotName, params string[] arguments)
    {
        var browser = Path.Combine(Modules.RepositoryRoot(), "tests", "browser");
        Assert.True(Directory.Exists(Path.Combine(browser, "node_modules")), "run `npm ci` in tests/browser first (./deploy/test.sh does)");
        var screenshot = Path.Combine(Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName, screenshotName);
        var lines = await ToolProcess.RunAsync("node", [script, Server.Address.ToString(), screenshot, .. arguments], browser);
        Assert.True(new FileInfo(screenshot).Length > 0);
        return lines;
    }
}
