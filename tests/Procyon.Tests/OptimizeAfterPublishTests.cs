using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Procyon.Testing;

namespace Procyon.Tests;

/// <summary>
/// With <c>Procyon:Runtime:OptimizeAfterPublish</c>, a publish answers after the quick rewrite and
/// the optimized rewrite replaces it in the background, here, on other replicas and after a restart.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OptimizeAfterPublishTests
{
    private const string On = "--Procyon:Runtime:OptimizeAfterPublish=true";

    [Fact]
    public async Task A_publish_serves_the_quick_rewrite_until_the_optimized_one_replaces_it_on_every_replica()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, On);
        await using var replica = await TestServer.StartAsync(database, On);
        var wasm = Modules.WithCustomSection(await File.ReadAllBytesAsync(Modules.PathOf("example")), Guid.NewGuid().ToString());

        using var published = await server.PublishBytesAsync("quick", wasm);

        Assert.Equal(HttpStatusCode.Created, published.StatusCode);
        Assert.False((await published.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("optimized").GetBoolean());
        Assert.Equal("5", await (await server.CallAsync("quick", "add", "[2, 3]")).Content.ReadAsStringAsync());
        var quickBytes = await database.ScalarAsync<int>("SELECT length(prepared) FROM procyon.databases WHERE name = 'quick'");
        await ScheduledTablesTests.EventuallyAsync(() => IsOptimizedAsync(server, "quick"));
        await ScheduledTablesTests.EventuallyAsync(() => IsOptimizedAsync(replica, "quick"));
        Assert.True(await database.ScalarAsync<bool>("SELECT optimized FROM procyon.databases WHERE name = 'quick'"));
        Assert.True(await database.ScalarAsync<int>("SELECT length(prepared) FROM procyon.databases WHERE name = 'quick'") < quickBytes);
        Assert.Equal("5", await (await server.CallAsync("quick", "add", "[2, 3]")).Content.ReadAsStringAsync());
        Assert.Equal("9", await (await replica.CallAsync("quick", "add", "[4, 5]")).Content.ReadAsStringAsync());

        // The same bytes again, in another database: the optimized rewrite is reused at once.
        using var again = await server.PublishBytesAsync("again", wasm);
        Assert.True((await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("optimized").GetBoolean());
    }

    [Fact]
    public async Task A_module_whose_optimization_failed_keeps_serving_and_a_restart_optimizes_it()
    {
        var scripts = Directory.CreateTempSubdirectory("procyon-wasm-opt-");
        try
        {
            await using var database = await TestDatabase.CreateAsync();
            var refusing = await WasmOptScript.WriteAsync(scripts.FullName, WasmOptScript.RefusingToOptimize);
            await using (var server = await TestServer.StartAsync(database, On, $"--Procyon:Runtime:WasmOptPath={refusing}"))
            {
                (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
                Assert.Equal("5", await (await server.CallAsync("example", "add", "[2, 3]")).Content.ReadAsStringAsync());
                Assert.False(await IsOptimizedAsync(server, "example"));
            }
            Assert.False(await database.ScalarAsync<bool>("SELECT optimized FROM procyon.databases WHERE name = 'example'"));

            await using var restarted = await TestServer.StartAsync(database, On);

            Assert.Equal("5", await (await restarted.CallAsync("example", "add", "[2, 3]")).Content.ReadAsStringAsync());
            await ScheduledTablesTests.EventuallyAsync(() => IsOptimizedAsync(restarted, "example"));
            Assert.True(await database.ScalarAsync<bool>("SELECT optimized FROM procyon.databases WHERE name = 'example'"));
            Assert.Equal("7", await (await restarted.CallAsync("example", "add", "[3, 4]")).Content.ReadAsStringAsync());
        }
        finally
        {
            scripts.Delete(recursive: true);
        }
    }

    private static async Task<bool> IsOptimizedAsync(ServerHandle server, string database) =>
        (await server.Http.GetFromJsonAsync<JsonElement>($"/v1/databases/{database}/schema")).GetProperty("optimized").GetBoolean();
}
