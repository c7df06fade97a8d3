using System.CommandLine;
using Procyon.Cli;

var root = new RootCommand("The Procyon command line: publish modules, call their functions, follow their logs and query their tables.");
root.Options.Add(CliOptions.Server);
foreach (var command in IdentityCommands.All().Concat(DatabaseCommands.All()).Concat(CallCommands.All()).Append(GenerateCommand.Create()))
{
    root.Subcommands.Add(command);
}
return await root.Parse(args).InvokeAsync();
