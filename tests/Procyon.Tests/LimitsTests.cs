using System.Net;
using Procyon.Testing;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

public sealed class LimitsTests
{
    [Fact]
    public async Task Calls_beyond_the_running_cap_and_the_queue_get_503_with_Retry_After_and_the_rest_complete()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, "--Procyon:Runtime:MaxConcurrentCalls=2", "--Procyon:Runtime:MaxQueuedCalls=1");
        await server.PublishAsync("faulty", "faulty");
        var sleepers = Enumerable.Range(0, 3).Select(_ => server.CallAsync("faulty", "naps", "[1, 1000]")).ToList();
        await Task.Delay(300);

        var refused = await server.CallAsync("faulty", "add", "[1,2]");

        var problem = await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("try again", problem.Detail());
        Assert.All(await Task.WhenAll(sleepers), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("faulty", "add", "[1,2]")).StatusCode);
    }

    [Fact]
    public async Task Compiled_modules_are_cached_on_disk_and_reused_after_a_restart()
    {
        var cache = Directory.CreateTempSubdirectory("procyon-cache-test-");
        try
        {
            await using var database = await TestDatabase.CreateAsync();
            var setting = $"--Procyon:Runtime:CompiledModuleCache={cache.FullName}";
            await using (var first = await TestServer.StartAsync(database, setting))
            {
                (await first.PublishAsync("example", "example")).EnsureSuccessStatusCode();
            }
            var entry = Assert.Single(cache.GetFiles("*.cwasm"));
            var written = entry.LastWriteTimeUtc;

            await using (var second = await TestServer.StartAsync(database, setting))
            {
                Assert.Equal("5", await (await second.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
            }

            entry.Refresh();
            Assert.Equal(written, entry.LastWriteTimeUtc);
            await File.WriteAllTextAsync(entry.FullName, "not machine code");
            await using var third = await TestServer.StartAsync(database, setting);
            Assert.Equal("5", await (await third.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
        }
        finally
        {
            cache.Delete(recursive: true);
        }
    }
}
