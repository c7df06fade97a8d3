using System.Diagnostics;
using System.Net;
using Procyon.Testing;
using Xunit.Abstractions;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Publishing's costly part, wasm-opt, bounded in number. wasm-opt is stood in for by shell scripts.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PublishLimitsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly DirectoryInfo _scripts = Directory.CreateTempSubdirectory("procyon-wasm-opt-");
    private TestDatabase? _database;
    private TestServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
        _scripts.Delete(recursive: true);
    }

    [Fact]
    public async Task Publishes_beyond_the_running_and_the_queued_get_503_with_Retry_After_and_the_rest_publish()
    {
        var server = await StartAsync("sleep 2\nexec wasm-opt \"$@\"", "--Procyon:Runtime:MaxConcurrentPrepares=1", "--Procyon:Runtime:MaxQueuedPrepares=1");
        await server.OwnerTokenAsync();

        var publishes = Enumerable.Range(0, 3).Select(async i =>
        {
            var elapsed = Stopwatch.StartNew();
            var response = await server.PublishAsync($"busy{i}", "example");
            return (Response: response, elapsed.Elapsed);
        }).ToList();
        var answers = await Task.WhenAll(publishes);

        Assert.Equal(2, answers.Count(a => a.Response.StatusCode == HttpStatusCode.Created));
        var (refused, after) = Assert.Single(answers, a => a.Response.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("MaxConcurrentPrepares", (await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable)).Detail());
        var published = answers.Where(a => a.Response.StatusCode == HttpStatusCode.Created).Select(a => a.Elapsed).ToList();
        Assert.True(after < published.Min(), $"the refusal took {after}, as long as a publish");
        output.WriteLine($"3 publishes at once, 1 running and 1 queued allowed: 503 after {after.TotalMilliseconds:0} ms, the others 201 after {published.Min().TotalMilliseconds:0} and {published.Max().TotalMilliseconds:0} ms");
    }

    /// <summary>A server on a database of its own whose wasm-opt is a shell script of <paramref name="wasmOpt"/>.</summary>
    private async Task<TestServer> StartAsync(string wasmOpt, params string[] settings)
    {
        var script = Path.Combine(_scripts.FullName, "wasm-opt");
        await File.WriteAllTextAsync(script, $"#!/bin/sh\n{wasmOpt}\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _database = await TestDatabase.CreateAsync();
        _server = await TestServer.StartAsync(_database, [$"--Procyon:Runtime:WasmOptPath={script}", .. settings]);
        return _server;
    }
}
