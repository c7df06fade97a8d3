namespace Procyon.Runtime;

/// <summary>Who made a call: 32 bytes, shown as 64 hex digits.</summary>
public readonly record struct Identity
{
    public const int Length = 32;

    private readonly byte[]? _bytes;

    /// <summary>Its hex, written once: every result a call makes names its caller.</summary>
    private readonly string? _hex;

    public Identity(ReadOnlySpan<byte> bytes)
        : this(bytes.ToArray(), hex: null)
    {
    }

    private Identity(byte[] bytes, string? hex)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"an identity is {Length} bytes, not {bytes.Length}", nameof(bytes));
        }
        _bytes = bytes;
        _hex = hex ?? Convert.ToHexStringLower(bytes);
    }

    /// <summary>The identity of calls that present no token: all zero bytes.</summary>
    public static Identity Anonymous { get; } = new(new byte[Length]);

    /// <summary>An identity from its 64 hex digits.</summary>
    public static Identity Parse(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        return new(bytes, hex.AsSpan().ContainsAnyInRange('A', 'F') ? null : hex);
    }

    public ReadOnlySpan<byte> Bytes => _bytes ?? Anonymous._bytes!;

    public bool Equals(Identity other) => Bytes.SequenceEqual(other.Bytes);

    public override int GetHashCode() => BitConverter.ToInt32(Bytes);

    public override string ToString() => _hex ?? Anonymous._hex!;
}
