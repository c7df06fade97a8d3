using System.Runtime.Versioning;

namespace Procyon.Testing;

/// <summary>A shell script standing in for <c>wasm-opt</c> (<c>Procyon:Runtime:WasmOptPath</c>), to make it slow, fail or misbehave.</summary>
[SupportedOSPlatform("linux")]
public static class WasmOptScript
{
    /// <summary>Writes <paramref name="body"/> as an executable script named <c>wasm-opt</c> in <paramref name="directory"/>; returns its path.</summary>
    public static async Task<string> WriteAsync(string directory, string body)
    {
        var script = Path.Combine(directory, "wasm-opt");
        await File.WriteAllTextAsync(script, $"#!/bin/sh\n{body}\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return script;
    }

    /// <summary>The real <c>wasm-opt</c>, except that it fails to optimize (<c>-O2</c>): a module keeps its quick rewrite.</summary>
    public const string RefusingToOptimize = "case \" $* \" in *\" -O2 \"*) echo 'optimizing is off here' >&2; exit 1 ;; esac\nexec wasm-opt \"$@\"";
}
