using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Procyon.Storage;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// Compiled machine code on disk, so a restart with many published modules does not compile
/// them again. Wasmtime trusts what it deserializes, so nothing is loaded that this server's key
/// did not authenticate: each entry starts with an HMAC-SHA256 over its name and its code, and
/// lives in a directory only the server's user may write to. An entry's name is a MAC of the
/// prepared bytes and the engine settings, so servers with other keys never meet its entries.
/// </summary>
public sealed partial class CompiledModuleCache(WasmEngine engine, ILogger<CompiledModuleCache> logger)
{
    private const int MacBytes = HMACSHA256.HashSizeInBytes;

    /// <summary>Entries no module loaded here uses are deleted once unused this long, whatever the cache's size.</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    /// <summary>Anything that changes the machine code Wasmtime produces.</summary>
    private readonly byte[] _engineKey = Encoding.UTF8.GetBytes(string.Join('|',
        typeof(Engine).Assembly.GetName().Version,
        engine.Options.MaxMemoryBytes,
        "epoch-interruption",
        "guard-64k"));

    /// <summary>Set once the cache is open: its directory and key. Until then, and when it is off or refused, modules compile every time.</summary>
    private (string Directory, byte[] Key)? _open;

    /// <summary>
    /// Modules compiled or loaded here, by the SHA-256 of their prepared bytes, while a database
    /// uses them: databases of one module share its machine code (about 2 MB for the example
    /// module) instead of each holding a copy. A shared module is named by that hash, never by a
    /// database, since other tenants' calls run it too.
    /// </summary>
    private readonly ConcurrentDictionary<string, (WeakReference<Module> Module, string? Entry)> _shared = new(StringComparer.Ordinal);

    /// <summary>
    /// Opens the cache as the server starts: makes or checks its directory and loads the key (the
    /// configured one, or the one kept in Postgres). A directory that is not private to the
    /// server's user leaves the cache off, with an error in the log: the server compiles instead.
    /// </summary>
    public async Task OpenAsync(ModuleStore store, CancellationToken cancellationToken)
    {
        var options = engine.Options;
        var directory = options.CompiledModuleCache ?? Path.Combine(options.DataDirectory, "compiled");
        if (directory.Length == 0)
        {
            return;
        }
        string? problem;
        try
        {
            problem = (options.CompiledModuleCache is null ? PrivateDirectory.Ensure(options.DataDirectory) : null) ?? PrivateDirectory.Ensure(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e.Message;
        }
        if (problem is not null)
        {
            LogRefused(directory, problem);
            return;
        }
        var encoded = options.CompiledCacheKey
            ?? await store.SettingAsync("runtime.compiled_cache_key", () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), cancellationToken);
        var key = Convert.FromBase64String(encoded);
        _open = key.Length >= 32 ? (directory, key) : throw new InvalidOperationException("Procyon:Runtime:CompiledCacheKey must be at least 32 bytes of base64");
    }

    /// <summary>The module compiled from <paramref name="prepared"/> (the one already loaded, if any), and the name of its cache entry (null when the cache is off).</summary>
    public (Module Module, string? Entry) GetOrCompile(byte[] prepared)
    {
        var name = Convert.ToHexStringLower(SHA256.HashData(prepared));
        if (_shared.TryGetValue(name, out var shared) && shared.Module.TryGetTarget(out var live))
        {
            ProcyonTelemetry.CompiledLookup("loaded");
            return (live, shared.Entry);
        }
        var (module, entry) = LoadOrCompile(name, prepared);
        _shared[name] = (new WeakReference<Module>(module), entry);
        return (module, entry);
    }

    private (Module Module, string? Entry) LoadOrCompile(string name, byte[] prepared)
    {
        if (_open is not var (directory, key))
        {
            ProcyonTelemetry.CompiledLookup("miss");
            return (Module.FromBytes(engine.Engine, name, prepared), null);
        }
        var entry = $"{Convert.ToHexStringLower(Mac(key, _engineKey, prepared))}.cwasm";
        var path = Path.Combine(directory, entry);
        if (Load(path, entry, key, name) is { } cached)
        {
            ProcyonTelemetry.CompiledLookup("hit");
            return (cached, entry);
        }
        ProcyonTelemetry.CompiledLookup("miss");
        var module = Module.FromBytes(engine.Engine, name, prepared);
        Write(path, entry, key, module.Serialize());
        return (module, entry);
    }

    /// <summary>
    /// Deletes the entries no module loaded here uses that have gone unused for a day, or that,
    /// least recently used first, would take the cache beyond <see cref="RuntimeOptions.CompiledCacheMaxBytes"/>.
    /// </summary>
    public void Prune(IEnumerable<string?> inUse)
    {
        foreach (var (name, shared) in _shared)
        {
            if (!shared.Module.TryGetTarget(out _))
            {
                _shared.TryRemove(name, out _);
            }
        }
        if (_open is not var (directory, _))
        {
            return;
        }
        var used = inUse.OfType<string>().ToHashSet(StringComparer.Ordinal);
        var now = DateTime.UtcNow;
        var size = 0L;
        try
        {
            foreach (var file in new DirectoryInfo(directory).GetFiles().OrderByDescending(f => f.LastAccessTimeUtc))
            {
                if (used.Contains(file.Name) || (now - file.LastAccessTimeUtc < Retention && size + file.Length <= engine.Options.CompiledCacheMaxBytes))
                {
                    size += file.Length;
                    continue;
                }
                file.Delete();
                LogPruned(file.Name, file.Length);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogPruneFailed(directory, e.Message);
        }
    }

    /// <summary>A cached module whose MAC this key verifies; null when there is none, or when the entry is forged, damaged or stale (it is deleted).</summary>
    private Module? Load(string path, string entry, byte[] key, string name)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            // Read, not mapped: the bytes verified are the bytes loaded, whatever happens to the file later.
            var sealedBytes = File.ReadAllBytes(path);
            var code = sealedBytes.AsSpan(Math.Min(MacBytes, sealedBytes.Length));
            if (sealedBytes.Length < MacBytes || !CryptographicOperations.FixedTimeEquals(sealedBytes.AsSpan(0, MacBytes), Mac(key, Encoding.UTF8.GetBytes(entry), code)))
            {
                LogForged(path);
                Discard(path);
                return null;
            }
            var module = Module.Deserialize(engine.Engine, name, code);
            // Its time of last use, for pruning, whatever the file system's atime options.
            File.SetLastAccessTimeUtc(path, DateTime.UtcNow);
            return module;
        }
        catch (Exception e) when (e is WasmtimeException or IOException or UnauthorizedAccessException)
        {
            LogUnloadable(path, e.Message);
            Discard(path);
            return null;
        }
    }

    /// <summary>Deletes a bad entry; one that cannot be deleted is overwritten by the fresh compile.</summary>
    private static void Discard(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Write replaces it, or says why it cannot.
        }
    }

    private void Write(string path, string entry, byte[] key, byte[] code)
    {
        try
        {
            // Write then rename, so a concurrent reader never sees half a file.
            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            using (var file = File.Create(temporary))
            {
                file.Write(Mac(key, Encoding.UTF8.GetBytes(entry), code));
                file.Write(code);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogWriteFailed(path, e.Message);
        }
    }

    /// <summary>
    /// HMAC-SHA256 of two parts: an entry's name is the MAC of the engine settings and the
    /// prepared bytes; its seal, the MAC of its name and its code, so a valid entry of another
    /// module under this name does not verify.
    /// </summary>
    private static byte[] Mac(byte[] key, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        mac.AppendData(first);
        mac.AppendData(second);
        return mac.GetHashAndReset();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The compiled-module cache {Directory} is off: {Problem}. Modules compile on every start")]
    private partial void LogRefused(string directory, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Compiled module {Path} did not verify against the server's key (forged or damaged); deleted, compiling again")]
    private partial void LogForged(string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Compiled module {Path} could not be loaded ({Reason}); deleted, compiling again")]
    private partial void LogUnloadable(string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Compiled module {Path} could not be written ({Reason}); the next start compiles again")]
    private partial void LogWriteFailed(string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned compiled module {Entry} ({Bytes} bytes) from the cache")]
    private partial void LogPruned(string entry, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not prune the compiled-module cache {Directory} ({Reason})")]
    private partial void LogPruneFailed(string directory, string reason);
}
