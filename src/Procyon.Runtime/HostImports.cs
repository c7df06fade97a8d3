using System.Text;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// The <c>procyon</c> import module: each import moves bytes between guest memory and the
/// call in progress. Guest pointers and lengths are checked before use.
/// </summary>
internal static class HostImports
{
    public const string Module = "procyon";

    /// <summary>The longest log line or panic message kept; the rest is cut.</summary>
    private const int MaxMessageBytes = 64 * 1024;

    private static readonly string[] Levels = ["ERROR", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

    public static IReadOnlySet<string> Names { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "console_log", "panic", "args_read", "result_write", "caller_identity", "sleep_until",
    };

    public static void Define(Linker linker)
    {
        linker.DefineFunction(Module, "console_log",
            (Caller caller, int level, int target, int targetLen, int file, int fileLen, int line, int message, int messageLen) =>
            {
                var instance = Instance(caller);
                instance.Log(new ModuleLogRecord(
                    DateTimeOffset.UtcNow,
                    Levels[Math.Clamp(level, 0, Levels.Length - 1)],
                    ReadText(caller, target, targetLen),
                    ReadText(caller, file, fileLen),
                    (uint)line,
                    ReadText(caller, message, messageLen)));
            });
        linker.DefineFunction(Module, "panic", (Caller caller, int message, int messageLen, int file, int fileLen, int line) =>
        {
            var location = ReadText(caller, file, fileLen);
            var text = location.Length == 0
                ? ReadText(caller, message, messageLen)
                : $"panicked at {location}:{(uint)line}: {ReadText(caller, message, messageLen)}";
            Instance(caller).Frame.Panic = text;
        });
        linker.DefineFunction(Module, "args_read", (Caller caller, int destination) =>
        {
            var arguments = Instance(caller).Frame.Arguments.Span;
            arguments.CopyTo(Guest(caller, destination, arguments.Length));
        });
        linker.DefineFunction(Module, "result_write", (Caller caller, int source, int length) =>
        {
            Instance(caller).Frame.Result = Guest(caller, source, length).ToArray();
        });
        linker.DefineFunction(Module, "caller_identity", (Caller caller, int destination) =>
        {
            Instance(caller).Frame.Caller.Bytes.CopyTo(Guest(caller, destination, Identity.Length));
        });
        linker.DefineFunction(Module, "sleep_until", (Caller caller, long targetMicros) => Instance(caller).SleepUntil(targetMicros));
    }

    private static ModuleInstance Instance(Caller caller) => (ModuleInstance)caller.GetData()!;

    private static Span<byte> Guest(Caller caller, int pointer, int length)
    {
        var memory = caller.GetMemory("memory") ?? throw new GuestFaultException("the module exports no memory named 'memory'");
        var (start, size, available) = ((uint)pointer, (uint)length, memory.GetLength());
        if (start + (ulong)size > (ulong)available)
        {
            throw new GuestFaultException($"the module passed bytes [{start}, {start + (ulong)size}) outside its {available}-byte memory");
        }
        return memory.GetSpan(start, (int)size);
    }

    private static string ReadText(Caller caller, int pointer, int length)
    {
        var bytes = Guest(caller, pointer, length);
        return Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, MaxMessageBytes)]);
    }
}

/// <summary>The module broke the ABI (a bad pointer, say); the call fails and the instance is dropped.</summary>
internal sealed class GuestFaultException(string message) : Exception(message);
