{
  description = "worker-runtime: hosts long-lived Workers behind an Effect service and a REST command API";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.flake-utils.url = "github:numtide/flake-utils";

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        nodejs = pkgs.nodejs_20;
      in
      {
        packages.default = pkgs.buildNpmPackage {
          pname = "worker-runtime";
          version = (builtins.fromJSON (builtins.readFile ./package.json)).version;
          src = ./.;
          inherit nodejs;
          # Dependencies come from package-lock.json; no hash to keep up to date.
          npmDeps = pkgs.importNpmLock { npmRoot = ./.; };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          # better-sqlite3 builds from source with node-gyp.
          nativeBuildInputs = [ pkgs.python3 ];
          npmBuildScript = "build";
          meta.mainProgram = "worker-runtime";
        };

        devShells.default = pkgs.mkShell {
          packages = [ nodejs ];
        };
      });
}
