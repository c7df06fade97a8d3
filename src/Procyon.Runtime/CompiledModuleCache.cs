using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// Compiled machine code on disk, keyed by the prepared bytes and the engine settings, so a
/// restart with many published modules does not compile them again.
/// </summary>
public sealed partial class CompiledModuleCache(WasmEngine engine, ILogger<CompiledModuleCache> logger)
{
    private readonly string? _directory = string.IsNullOrEmpty(engine.Options.CompiledModuleCache) ? null : engine.Options.CompiledModuleCache;

    /// <summary>Anything that changes the machine code Wasmtime produces.</summary>
    private readonly string _engineKey = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('|',
        typeof(Engine).Assembly.GetName().Version,
        engine.Options.MaxMemoryBytes,
        "epoch-interruption",
        "guard-64k"))))[..16];

    public Module GetOrCompile(string name, byte[] prepared)
    {
        if (_directory is null)
        {
            return Module.FromBytes(engine.Engine, name, prepared);
        }
        var path = Path.Combine(_directory, $"{Convert.ToHexStringLower(SHA256.HashData(prepared))}-{_engineKey}.cwasm");
        if (File.Exists(path))
        {
            try
            {
                // Read, not mapped: a file replaced or truncated later must not pull code from under a running module.
                return Module.Deserialize(engine.Engine, name, File.ReadAllBytes(path));
            }
            catch (WasmtimeException e)
            {
                LogStale(path, e.Message);
            }
        }
        var module = Module.FromBytes(engine.Engine, name, prepared);
        try
        {
            Directory.CreateDirectory(_directory);
            // Write then rename, so a concurrent reader never sees half a file.
            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            File.WriteAllBytes(temporary, module.Serialize());
            File.Move(temporary, path, overwrite: true);
        }
        catch (IOException e)
        {
            LogWriteFailed(path, e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            LogWriteFailed(path, e.Message);
        }
        return module;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Compiled module {Path} could not be loaded ({Reason}); compiling again")]
    private partial void LogStale(string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Compiled module {Path} could not be written ({Reason}); the next start compiles again")]
    private partial void LogWriteFailed(string path, string reason);
}
