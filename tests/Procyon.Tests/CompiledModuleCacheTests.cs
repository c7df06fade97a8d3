using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Procyon.Runtime;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// The compiled-module cache loads machine code, so it trusts only a private directory and only
/// entries its key authenticated; it drops entries no module uses any longer.
/// </summary>
[Collection(TimingCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CompiledModuleCacheTests : IAsyncLifetime
{
    private readonly DirectoryInfo _cache = Directory.CreateTempSubdirectory("procyon-cache-test-");
    private TestDatabase? _database;

    private TestDatabase Database => _database ?? throw new InvalidOperationException("not started");

    private string Setting => $"--Procyon:Runtime:CompiledModuleCache={_cache.FullName}";

    public async Task InitializeAsync() => _database = await TestDatabase.CreateAsync();

    public async Task DisposeAsync()
    {
        _cache.Delete(recursive: true);
        await Database.DisposeAsync();
    }

    [Theory]
    [InlineData(UnixFileMode.OtherWrite)]
    [InlineData(UnixFileMode.GroupWrite)]
    public async Task A_directory_others_may_write_to_is_refused_and_the_server_compiles_instead(UnixFileMode shared)
    {
        File.SetUnixFileMode(_cache.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | shared);

        await using var server = await TestServer.StartAsync(Database, Setting);
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();

        Assert.Equal("5", await (await server.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
        Assert.Empty(_cache.GetFiles());
    }

    [Theory]
    [InlineData("a flipped byte")]
    [InlineData("another module's valid entry")]
    public async Task A_tampered_entry_is_not_loaded_but_compiled_afresh_and_replaced(string tampering)
    {
        string example, ledger;
        await using (var first = await TestServer.StartAsync(Database, Setting))
        {
            example = await NewEntryAsync(() => first.PublishAsync("example", "example"));
            ledger = await NewEntryAsync(() => first.PublishAsync("ledger", "ledger"));
        }
        var bytes = tampering == "a flipped byte" ? await File.ReadAllBytesAsync(example) : await File.ReadAllBytesAsync(ledger);
        if (tampering == "a flipped byte")
        {
            bytes[bytes.Length / 2] ^= 0x40;
        }
        await File.WriteAllBytesAsync(example, bytes);

        await using var second = await TestServer.StartAsync(Database, Setting);

        Assert.Equal("5", await (await second.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await second.CallAsync("ledger", "counter_value", "")).StatusCode);
        Assert.NotEqual(bytes, await File.ReadAllBytesAsync(example));
    }

    [Fact]
    public async Task Databases_of_one_module_share_its_machine_code_while_others_get_their_own()
    {
        using var engine = new WasmEngine(Options.Create(new RuntimeOptions()));
        var cache = new CompiledModuleCache(engine, NullLogger<CompiledModuleCache>.Instance);
        var example = await File.ReadAllBytesAsync(Modules.PathOf("example"));

        var (first, _) = cache.GetOrCompile(example);
        var (again, _) = cache.GetOrCompile(example.ToArray());
        var (other, _) = cache.GetOrCompile(await File.ReadAllBytesAsync(Modules.PathOf("ledger")));

        Assert.Same(first, again);
        Assert.NotSame(first, other);
        Assert.DoesNotContain("example", first.Name, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_modules_entry_is_pruned_once_unused_for_a_day()
    {
        await using var server = await TestServer.StartAsync(Database, Setting);
        var example = await NewEntryAsync(() => server.PublishAsync("example", "example"));
        var ledger = await NewEntryAsync(() => server.PublishAsync("ledger", "ledger"));
        Assert.Equal(HttpStatusCode.NoContent, (await server.DeleteAsync("ledger")).StatusCode);
        Assert.True(File.Exists(ledger), "an entry used a moment ago went at once");
        foreach (var entry in _cache.GetFiles())
        {
            entry.LastAccessTimeUtc = DateTime.UtcNow.AddDays(-2);
        }

        // Any change of the modules here prunes.
        var faulty = await NewEntryAsync(() => server.PublishAsync("faulty", "faulty"));

        Assert.Equal(new[] { example, faulty }.Order(), _cache.GetFiles().Select(f => f.FullName).Order());
    }

    [Fact]
    public async Task Beyond_its_size_the_cache_drops_entries_no_module_uses()
    {
        await using var server = await TestServer.StartAsync(Database, Setting, "--Procyon:Runtime:CompiledCacheMaxBytes=1");
        var example = await NewEntryAsync(() => server.PublishAsync("example", "example"));
        await NewEntryAsync(() => server.PublishAsync("ledger", "ledger"));
        Assert.Equal(2, _cache.GetFiles().Length);

        Assert.Equal(HttpStatusCode.NoContent, (await server.DeleteAsync("ledger")).StatusCode);

        Assert.Equal(example, Assert.Single(_cache.GetFiles()).FullName);
        Assert.Equal("5", await (await server.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
    }

    /// <summary>Publishes, and returns the path of the one entry the publish added.</summary>
    private async Task<string> NewEntryAsync(Func<Task<HttpResponseMessage>> publish)
    {
        var before = _cache.GetFiles().Select(f => f.FullName).ToHashSet();
        (await publish()).EnsureSuccessStatusCode();
        return Assert.Single(_cache.GetFiles(), f => !before.Contains(f.FullName)).FullName;
    }
}
