using System.Runtime.InteropServices;

namespace Procyon.Runtime;

/// <summary>
/// A directory only the server's user may change: created with mode 0700, or, when it exists,
/// checked to belong to that user and to be writable by nobody else. Whoever can write there
/// could plant files the server trusts.
/// </summary>
internal static partial class PrivateDirectory
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates <paramref name="path"/> (and missing parents) or checks it; returns why it cannot be trusted, or null.</summary>
    public static string? Ensure(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            // Per-user folders there are private by their ACLs; Unix modes do not apply.
            Directory.CreateDirectory(path);
            return null;
        }
        Directory.CreateDirectory(path, OwnerOnly);
        if (OperatingSystem.IsLinux() && OwnerOf(path) is var owner && owner != GetEffectiveUserId())
        {
            return $"it belongs to user id {owner}, not to the server's user id {GetEffectiveUserId()}";
        }
        return (File.GetUnixFileMode(path) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0
            ? "its group or other users may write to it (chmod 700 it)"
            : null;
    }

    /// <summary>The owner's user id, by statx(2), whose layout is the same on every Linux architecture (following links, as the server does).</summary>
    private static uint OwnerOf(string path)
    {
        const int CurrentDirectory = -100;
        const uint WantUserId = 0x8;
        return Statx(CurrentDirectory, path, 0, WantUserId, out var status) == 0
            ? status.UserId
            : throw new IOException($"cannot read the owner of {path}: error {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    /// <summary>The start of <c>struct statx</c>, which is 256 bytes long.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct StatxBuffer
    {
        public uint Mask;
        public uint BlockSize;
        public ulong Attributes;
        public uint Links;
        public uint UserId;
    }
}
