using System.Diagnostics;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>Swagger UI in headless Chromium (tests/browser, playwright-core with Debian's Chromium).</summary>
public sealed class BrowserTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task Try_it_out_in_Swagger_UI_calls_add_and_shows_the_result()
    {
        var browser = Path.Combine(Modules.RepositoryRoot(), "tests", "browser");
        Assert.True(Directory.Exists(Path.Combine(browser, "node_modules")), "run `npm ci` in tests/browser first (./deploy/test.sh does)");
        var artifacts = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts"));
        var screenshot = Path.Combine(artifacts.FullName, "swagger-try-it-out.png");
        var start = new ProcessStartInfo("node", ["swagger.mjs", Server.Address.ToString(), screenshot])
        {
            WorkingDirectory = browser,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        using var node = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var output = node.StandardOutput.ReadToEndAsync(timeout.Token);
        var errors = node.StandardError.ReadToEndAsync(timeout.Token);
        await node.WaitForExitAsync(timeout.Token);

        Assert.True(node.ExitCode == 0, $"node failed: {await errors}");
        var lines = (await output).Split('\n', StringSplitOptions.TrimEntries);
        Assert.Contains("status: 200", lines);
        Assert.Contains("result: 2", lines);
        Assert.True(new FileInfo(screenshot).Length > 0);
    }
}
